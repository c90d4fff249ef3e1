// Package web is the operator console: one page, served by the binary itself,
// whose views (an overview of the mail flowing, the emails and each one's page,
// dead letters, suppressions, webhooks, API keys, a test send) call only the
// public /api with the admin key the operator pastes; the page holds no logic
// the API does not already have.
//
// The assets are embedded, so the console works wherever the binary runs, with no
// build step and nothing fetched from elsewhere: the server's content security
// policy allows scripts only from our own origin. The two third-party files
// (uPlot for the charts, DOMPurify for an email's HTML preview) are vendored
// into static/vendor at pinned versions by scripts/vendor-web.sh.
package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/platform/apperr"
)

//go:embed static
var static embed.FS

// contentTypes are the types of the files the console ships; a file of any other
// kind is not served, so a stray file in static/ cannot be sniffed into something.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".svg":  "image/svg+xml",
}

// Register adds the console to e, outside /api and its key check (the page itself
// holds no data; the key the operator pastes goes with each /api call): GET and
// HEAD / is the page, /static/* its assets (its scripts in js/, the views' styles
// in css/, the pinned third-party files in vendor/<package>/). An unknown asset is a 404 in the
// contract's error shape, like any other. It also serves the API's OpenAPI document
// at OpenAPIPath, with no key either.
//
// Every answer carries an ETag and Cache-Control: no-cache, so a browser keeps
// the assets but asks again each time (a 304 when unchanged): the files have no
// version in their names, and an upgraded binary must not run with a stale script.
func Register(e *echo.Echo) {
	methods := []string{http.MethodGet, http.MethodHead}
	e.Match(methods, "/", func(c echo.Context) error { return serve(c, "index.html") })
	// One route per folder, so that the OpenAPI document can name each (a path
	// parameter there never holds a slash).
	for _, dir := range []string{"/static/", "/static/js/", "/static/css/", "/static/vendor/:package/"} {
		e.Match(methods, dir+"*", func(c echo.Context) error {
			name := strings.TrimPrefix(c.Request().URL.Path, "/static/")
			if c.Param("*") == "" || strings.Contains(c.Param("*"), "/") {
				return notFound(name)
			}
			return serve(c, name)
		})
	}
	registerOpenAPI(e)
}

// serve answers with the embedded file static/name.
func serve(c echo.Context, name string) error {
	ctype, known := contentTypes[path.Ext(name)]
	if !known || !fs.ValidPath(name) {
		return notFound(name)
	}
	body, err := static.ReadFile("static/" + name)
	if err != nil {
		return notFound(name)
	}
	sum := sha256.Sum256(body)
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, ctype)
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", `"`+hex.EncodeToString(sum[:16])+`"`)
	// ServeContent answers HEAD, ranges and If-None-Match; a zero time sends no
	// Last-Modified (embedded files have none).
	http.ServeContent(c.Response(), c.Request(), name, time.Time{}, bytes.NewReader(body))
	return nil
}

func notFound(name string) error {
	return apperr.New(apperr.CodeNotFound, "no such file: /static/%s", apperr.Clip(name))
}
