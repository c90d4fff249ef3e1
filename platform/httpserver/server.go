// Package httpserver builds the Echo server every module registers its routes on:
// the contract's error shape, request ids, body limit, panic recovery, security
// headers and Prometheus metrics for every route.
package httpserver

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/logging"
)

// MaxHeaderBytes bounds a request's header block (Go's default is 1 MB): ample for
// an API key and the headers a client sends, and it keeps what one request can make
// the server hold, or write to a log, small. A larger header block is answered 431.
const MaxHeaderBytes = 32 << 10

// Config configures the server.
type Config struct {
	// MaxBodyBytes is the largest request body; a larger one is answered 413.
	MaxBodyBytes int64
	// TrustedProxies are the proxies whose X-Forwarded-For names the client (see
	// clientIP); empty, the connection's peer is the client.
	TrustedProxies []netip.Prefix
	// MinBodyRate is the least average rate, in bytes per second, at which a request
	// body must arrive once MinBodyRateGrace has passed; a slower one is cut (see
	// bodyRate). 0 turns it off. It works only for a server made by NewServer and
	// served on a Listener.
	MinBodyRate int64
	// MinBodyRateGrace is how long a body may take before MinBodyRate applies.
	MinBodyRateGrace time.Duration
}

// New returns an Echo instance with Mailroom's standard middleware.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = errorHandler(log)
	e.IPExtractor = clientIP(cfg.TrustedProxies)
	// Before routing, so that every answer carries them, errors included.
	e.Pre(securityHeaders, requestID, refuseUnknownMethods, bodyRate(cfg.MinBodyRate, cfg.MinBodyRateGrace))
	e.Use(middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true, DisablePrintStack: true,
		LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
			log.Error("handler panicked", "path", c.Path(), "error", err, "stack", string(stack),
				logging.KeyCorrelationID, c.Response().Header().Get(echo.HeaderXRequestID))
			return err
		}}))
	e.Use(bodyLimit(cfg.MaxBodyBytes))
	e.Use(metrics(reg))
	return e
}

// ContentSecurityPolicy is the policy every answer carries: scripts, fonts,
// connections and frames from our own origin only, no plugins, no framing by
// others. Styles may also be inline and images may be data: URLs for one reason:
// the console shows an email's HTML in a sandboxed srcdoc frame, which inherits
// this policy, and mail is styled inline. The console's own pages use neither,
// and put nothing the API returns on the page as markup.
const ContentSecurityPolicy = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; " +
	"object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// securityHeaders sets the headers every answer should carry: no MIME sniffing, no
// framing, and ContentSecurityPolicy.
func securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("Referrer-Policy", "no-referrer")
		return next(c)
	}
}

// clientIP is how the server tells a request's client address (c.RealIP(), in the
// logs): the connection's peer, unless that peer is one of the trusted proxies,
// whose X-Forwarded-For then names the client. Echo's default believes
// X-Forwarded-For and X-Real-IP from anyone, so any client could name any address.
func clientIP(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		opts = append(opts, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// bodyLimit caps what a handler can read of a request body at max bytes; reading
// past it fails, and DecodeJSON answers that 413. Nothing is refused before a
// handler reads (Echo's BodyLimit refuses on Content-Length at once), so a request
// the API-key check refuses is answered 401 with none of its body read, whatever
// size it claims.
func bodyLimit(max int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			// The server's own writer: told the body was too large, it closes the
			// connection instead of reading the rest for the next request.
			req.Body = http.MaxBytesReader(c.Response().Writer, req.Body, max)
			return next(c)
		}
	}
}

// knownMethods are the methods Mailroom answers (RFC 9110's, less CONNECT and
// TRACE). Go's server takes any token as a method; every other one is refused before
// routing, so what a client puts there never becomes a metric label, a log field or
// work.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// refuseUnknownMethods answers 501 to a method not in knownMethods.
func refuseUnknownMethods(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !knownMethods[c.Request().Method] {
			return apperr.New(apperr.CodeNotImplemented, "unknown HTTP method")
		}
		return next(c)
	}
}

// requestIDPattern is what an X-Request-Id from a client must look like to be kept:
// up to 128 characters that need no escaping anywhere it goes (logs, the email's
// record, the response header).
var requestIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestID gives every request an id: the client's X-Request-Id when it matches
// requestIDPattern, a fresh UUID otherwise (a long or odd one is replaced, never
// trimmed, so no part of it reaches a log line). It is set on the request and
// the response; the rest of the code reads it from the response header, and it is
// the correlation id of every email the request sends.
func requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !requestIDPattern.MatchString(id) {
			id = uuid.NewString()
			c.Request().Header.Set(echo.HeaderXRequestID, id)
		}
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		return next(c)
	}
}

// metrics counts requests and times them by route, method and status. Every label
// comes from a closed set: the route template Echo matched (or "unmatched"), a
// method of knownMethods (others never get here), and the status Mailroom answered.
func metrics(reg prometheus.Registerer) echo.MiddlewareFunc {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "mailroom_http_requests_total", Help: "HTTP requests by route, method and status.",
	}, []string{"route", "method", "status"})
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "mailroom_http_request_duration_seconds", Help: "HTTP request latency by route and method.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"route", "method"})
	reg.MustRegister(requests, duration)
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			requests.WithLabelValues(route, c.Request().Method, strconv.Itoa(c.Response().Status)).Inc()
			duration.WithLabelValues(route, c.Request().Method).Observe(time.Since(start).Seconds())
			return nil
		}
	}
}
