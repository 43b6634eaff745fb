# A static library of every .c in the directory: set ARCHIVE (its name)
# before including this after common.mk. lib/ and relay/ use it.
OBJS := $(patsubst %.c,%.o,$(wildcard *.c))

all: $(ARCHIVE)

$(ARCHIVE): $(OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && $(AR) rcs $@ $^

clean:
	rm -f *.o *.d *.a

-include $(OBJS:.o=.d)
.PHONY: all clean
