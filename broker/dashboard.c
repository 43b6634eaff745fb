// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The dashboard: a read-only page (www/) that reads the HTTP API from the
 * browser. Its files are compiled into the binary (.incbin): nothing to
 * install, no search path, and the page always matches the API it reads.
 * control.c serves them; this file knows nothing of HTTP.
 */
#include <errno.h>
#include <string.h>

#include "broker.h"

/* WWW(sym, "file"): www/file as sym[] .. sym_end[], in .rodata. */
#define WWW(sym, file)								\
	__asm__(".pushsection .rodata\n"					\
		".global " #sym "\n.hidden " #sym "\n.type " #sym ", @object\n"	\
		#sym ":\n.incbin \"" WWW_DIR file "\"\n"			\
		".global " #sym "_end\n.hidden " #sym "_end\n"			\
		#sym "_end:\n.popsection\n");					\
	extern const char sym[], sym##_end[]

WWW(www_index, "index.html");
WWW(www_css, "app.css");
WWW(www_js, "app.js");

#define HTML "text/html; charset=utf-8"

static const struct {
	const char *url;
	const char *type;
	const char *data, *end;
} files[] = {
	{ "/", HTML, www_index, www_index_end },
	{ "/dashboard", HTML, www_index, www_index_end },
	{ "/dashboard/", HTML, www_index, www_index_end },
	{ "/dashboard/app.css", "text/css; charset=utf-8", www_css, www_css_end },
	{ "/dashboard/app.js", "text/javascript; charset=utf-8", www_js, www_js_end },
};

int dashboard_file(const char *url, struct dashboard_file *f)
{
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		if (strcmp(url, files[i].url))
			continue;
		f->type = files[i].type;
		f->data = files[i].data;
		f->len = files[i].end - files[i].data;
		return 0;
	}
	return -ENOENT;
}
