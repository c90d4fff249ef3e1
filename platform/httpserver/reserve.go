package httpserver

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/platform/apperr"
)

// ReserveRetryAfter is the Retry-After of a write refused under the disk reserve:
// space comes back when an operator or the retention job frees it, not in a second,
// so clients are asked to wait a minute rather than hammer.
const ReserveRetryAfter = time.Minute

// RefuseWritesUnderReserve is middleware that answers POST, PUT and PATCH (the
// methods that add data) with 507 insufficient_storage, Retry-After and low's
// message while low returns an error, and passes everything else: reads, and
// DELETE, which frees or revokes, stay open so that an operator can act. low is
// asked on each such request and must be cheap (sqlite.DiskReserve.Check caches).
// Refusing here, with room left on the disk, keeps what is in flight committable;
// at a truly full disk every write fails, for every key.
func RefuseWritesUnderReserve(low func() error) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			switch c.Request().Method {
			case http.MethodPost, http.MethodPut, http.MethodPatch:
				if err := low(); err != nil {
					return &apperr.Error{Code: apperr.CodeInsufficientStorage, Message: err.Error(), RetryAfter: ReserveRetryAfter}
				}
			}
			return next(c)
		}
	}
}
