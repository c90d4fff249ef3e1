package httpserver

import (
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/platform/apperr"
)

// QueryLimit reads the page size of a list endpoint from the query parameter
// "limit". Only an absent or empty limit means the endpoint's default, answered as
// 0; a limit given must be a whole number from 1 to max, written in digits, so that
// "0", "-0" or "ten" is refused rather than quietly taken as the default.
func QueryLimit(c echo.Context, max int) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return 0, nil
	}
	n := 0
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' || n > max {
			return 0, apperr.Invalid("limit", "must be a whole number from 1 to %d", max)
		}
		n = n*10 + int(v[i]-'0')
	}
	if n < 1 || n > max {
		return 0, apperr.Invalid("limit", "must be a whole number from 1 to %d", max)
	}
	return n, nil
}

// KnownQuery refuses a request whose query string the route would not read as the
// client meant it, so that a list handler never answers a question it was not asked:
// a parameter the route does not take (?to=x would otherwise list every email, and
// an operator's bulk action may follow), a parameter given more than once (only the
// first would be read), and a query string that does not parse (net/url drops a
// malformed pair, or one joined by ";", without a word). names are the parameters
// the route takes, in the order the message lists them; a route that takes none
// passes none and refuses any. A handler calls it before it reads a parameter.
//
// The parameters sent are checked in sorted order, so one request always gets the
// same answer: a 400 invalid_field whose field is the parameter at fault, its name
// cut to apperr.MaxEchoed characters. A parameter with an empty name ("?=x") is
// refused without a field, as is a query string that does not parse.
func KnownQuery(c echo.Context, names ...string) error {
	raw := c.Request().URL.RawQuery
	if raw == "" {
		return nil
	}
	values, err := url.ParseQuery(raw)
	if err != nil {
		return &apperr.Error{Code: apperr.CodeInvalidField, Message: "query string does not parse: " + err.Error(), Err: err}
	}
	for _, name := range slices.Sorted(maps.Keys(values)) {
		switch {
		case name == "":
			return &apperr.Error{Code: apperr.CodeInvalidField,
				Message: "query string: a parameter has no name; " + routeTakes(names)}
		case !slices.Contains(names, name):
			return apperr.Invalid(apperr.Clip(name), "unknown query parameter; %s", routeTakes(names))
		case len(values[name]) > 1:
			return apperr.Invalid(name, "given %d times; give it once", len(values[name]))
		}
	}
	return nil
}

// routeTakes says which query parameters a route takes, for KnownQuery's messages.
func routeTakes(names []string) string {
	if len(names) == 0 {
		return "this route takes no query parameters"
	}
	return "this route takes " + strings.Join(names, ", ")
}

// QueryCursor reads the "cursor" query parameter of a list whose next_cursor is a
// row id: 0 when absent, else a positive whole number written exactly as
// next_cursor writes it ("007" or "+7" is not one), or a 400 naming cursor.
func QueryCursor(c echo.Context) (int64, error) {
	v := c.QueryParam("cursor")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 1 || strconv.FormatInt(n, 10) != v {
		return 0, apperr.Invalid("cursor", "not a cursor from next_cursor")
	}
	return n, nil
}

// QueryIncludeTotal reads the "include_total" query parameter of a list that can
// count every match beside its page (answered as "total"): false when absent or
// "false", true for "true", or a 400 naming include_total.
func QueryIncludeTotal(c echo.Context) (bool, error) {
	switch c.QueryParam("include_total") {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, apperr.Invalid("include_total", "must be true or false")
	}
}

// Page is the answer of a list route whose next_cursor is a row id (QueryCursor
// reads it back): the page's items, "" as next_cursor on the last page, and total
// only when include_total=true asked for it (QueryIncludeTotal).
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
	Total      *int   `json:"total,omitempty"`
}

// PageOf is the Page of items, each shown as convert shows it, whose next page
// starts after row next (0 on the last page). Items is [] rather than null when
// the page is empty.
func PageOf[S, T any](items []S, next int64, convert func(S) T) Page[T] {
	p := Page[T]{Items: make([]T, 0, len(items))}
	for _, it := range items {
		p.Items = append(p.Items, convert(it))
	}
	if next > 0 {
		p.NextCursor = strconv.FormatInt(next, 10)
	}
	return p
}
