package httpserver

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/platform/apperr"
)

// Group returns e.Group(prefix, m...) with its catch-all routes answering as Echo
// answers outside a group. Echo gives a group with middleware a catch-all route, so
// that the middleware (the API key check) runs for unknown paths too; but that
// catch-all also takes a known path asked with a method it has no route for, which
// would then be 404 "no such route" where Echo answers 405 with an Allow header.
// Here such a request is 405 with Allow (204 with Allow for OPTIONS, as Echo), and
// only a path with no route for any method is 404.
func Group(e *echo.Echo, prefix string, m ...echo.MiddlewareFunc) *echo.Group {
	g := e.Group(prefix, m...)
	h := methodAwareNotFound(e)
	g.RouteNotFound("", h)
	g.RouteNotFound("/*", h)
	return g
}

// probedMethods are the methods Echo's router keeps apart, in the order Echo writes
// them in Allow (after OPTIONS, which it always allows).
var probedMethods = []string{http.MethodConnect, http.MethodDelete, http.MethodGet, http.MethodHead, http.MethodPatch,
	http.MethodPost, "PROPFIND", http.MethodPut, http.MethodTrace, "REPORT"}

// methodAwareNotFound is the catch-all handler of Group: it asks the router which
// methods have a route at the request's path. A method whose lookup ends at this
// same catch-all has none.
func methodAwareNotFound(e *echo.Echo) echo.HandlerFunc {
	return func(c echo.Context) error {
		path := echo.GetPath(c.Request())
		allow := []string{http.MethodOptions}
		for _, method := range probedMethods {
			probe := e.NewContext(c.Request(), nil)
			e.Router().Find(method, path, probe)
			if probe.Path() != c.Path() {
				allow = append(allow, method)
			}
		}
		if len(allow) == 1 {
			return echo.ErrNotFound
		}
		header := strings.Join(allow, ", ")
		c.Response().Header().Set(echo.HeaderAllow, header)
		if c.Request().Method == http.MethodOptions {
			return c.NoContent(http.StatusNoContent)
		}
		return apperr.New(apperr.CodeMethodNotAllowed, "method %s not allowed here; allowed: %s", apperr.Clip(c.Request().Method), header)
	}
}
