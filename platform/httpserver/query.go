package httpserver

import (
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
