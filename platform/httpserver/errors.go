package httpserver

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/logging"
)

// statusOf maps each error code to its HTTP status: the one table of it.
var statusOf = map[apperr.Code]int{
	apperr.CodeInvalidField:        http.StatusBadRequest,
	apperr.CodeInvalidJSON:         http.StatusBadRequest,
	apperr.CodeNotFound:            http.StatusNotFound,
	apperr.CodeConflict:            http.StatusConflict,
	apperr.CodeUnauthorized:        http.StatusUnauthorized,
	apperr.CodeForbidden:           http.StatusForbidden,
	apperr.CodeTooLarge:            http.StatusRequestEntityTooLarge,
	apperr.CodeUnsupportedMedia:    http.StatusUnsupportedMediaType,
	apperr.CodeRateLimited:         http.StatusTooManyRequests,
	apperr.CodeQuotaExceeded:       http.StatusTooManyRequests,
	apperr.CodeInsufficientStorage: http.StatusInsufficientStorage,
	apperr.CodeUnavailable:         http.StatusServiceUnavailable,
	apperr.CodeMethodNotAllowed:    http.StatusMethodNotAllowed,
	apperr.CodeNotImplemented:      http.StatusNotImplemented,
	apperr.CodeInternal:            http.StatusInternalServerError,
}

// ErrorBody is the JSON shape of every error answer.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of ErrorBody.
type ErrorDetail struct {
	Code    apperr.Code `json:"code"`
	Message string      `json:"message"`
	Field   string      `json:"field,omitempty"`
}

// errorHandler answers every error in the contract's shape. Echo's own errors (404
// route, 405, 413 from the body limit) are mapped too; anything else is a 500 whose
// cause is logged and never shown.
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	unavailable := logging.NewSampler(time.Second)
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		e, ok := apperr.As(err)
		if !ok {
			var he *echo.HTTPError
			if errors.As(err, &he) {
				e = fromEcho(he)
			} else {
				e = &apperr.Error{Code: apperr.CodeInternal, Message: "internal error", Err: err}
			}
		}
		status := statusOf[e.Code]
		if status == 0 {
			status = http.StatusInternalServerError
		}
		switch {
		case status == http.StatusServiceUnavailable || status == http.StatusInsufficientStorage:
			// An outage (full disk, broken database, the disk reserve reached) fails
			// every request alike: a warning a second, with how many it stands for,
			// not one per request.
			if n := unavailable.Take(time.Now()); n > 0 {
				log.Warn("requests refused: service unavailable", "method", c.Request().Method, "path", c.Path(),
					"status", status, "error", err, "refused", n,
					logging.KeyCorrelationID, c.Response().Header().Get(echo.HeaderXRequestID))
			}
		case status >= 500 && status != http.StatusNotImplemented: // 501 is the client's method
			log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "status", status, "error", err,
				logging.KeyCorrelationID, c.Response().Header().Get(echo.HeaderXRequestID))
		}
		if e.RetryAfter > 0 {
			c.Response().Header().Set(echo.HeaderRetryAfter, strconv.FormatInt(int64(math.Ceil(e.RetryAfter.Seconds())), 10))
		}
		body := ErrorBody{Error: ErrorDetail{Code: e.Code, Message: e.Message, Field: e.Field}}
		if c.Request().Method == http.MethodHead {
			_ = c.NoContent(status)
			return
		}
		_ = c.JSON(status, body)
	}
}

func fromEcho(he *echo.HTTPError) *apperr.Error {
	switch he.Code {
	case http.StatusNotFound:
		return apperr.New(apperr.CodeNotFound, "no such route")
	case http.StatusMethodNotAllowed:
		return apperr.New(apperr.CodeMethodNotAllowed, "method not allowed")
	case http.StatusRequestEntityTooLarge:
		return apperr.New(apperr.CodeTooLarge, "request body too large")
	case http.StatusUnsupportedMediaType:
		return apperr.New(apperr.CodeUnsupportedMedia, "content type must be application/json")
	case http.StatusUnauthorized:
		return apperr.New(apperr.CodeUnauthorized, "missing or invalid API key")
	case http.StatusBadRequest:
		return apperr.New(apperr.CodeInvalidField, "bad request")
	case http.StatusTooManyRequests:
		return apperr.New(apperr.CodeRateLimited, "rate limited")
	case http.StatusServiceUnavailable:
		return apperr.New(apperr.CodeUnavailable, "service unavailable")
	}
	return &apperr.Error{Code: apperr.CodeInternal, Message: "internal error", Err: he}
}
