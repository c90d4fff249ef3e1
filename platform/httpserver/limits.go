package httpserver

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// Limits bound what one client can make the server hold: how long a request may take
// to arrive, how long its answer may take to leave, how long an idle keep-alive
// connection stays open, and how many connections are open at once. Every field
// must be positive (config.HTTP checks the keys they come from).
type Limits struct {
	// ReadHeaderTimeout bounds a request's header, from its first byte.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds a whole request, header and body.
	ReadTimeout time.Duration
	// WriteTimeout bounds handling a request and writing its answer, from the end
	// of its header.
	WriteTimeout time.Duration
	// IdleTimeout bounds the wait for a keep-alive connection's next request.
	IdleTimeout time.Duration
	// MaxConnections is the most connections Listener lets be open at once.
	MaxConnections int
}

// NewServer returns the http.Server that serves h within lim, with header blocks
// over MaxHeaderBytes refused. Serve it on a Listener, which the minimum body rate
// (Config.MinBodyRate) needs to find each connection's read deadline.
func NewServer(h http.Handler, lim Limits) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
}

// Listener returns l with at most maxConns of its connections open at once: while
// that many are, Accept waits, so further clients wait in the kernel's listen backlog
// (and are refused once it is full) instead of taking the process's file
// descriptors. (golang.org/x/net/netutil.LimitListener does the same, but its
// connections hide the TCP connection's CloseWrite, which net/http uses to let a
// client read an error answer before the connection closes.) Each connection also
// remembers the read deadline the server set on it last, for the minimum body rate.
func Listener(l net.Listener, maxConns int) net.Listener {
	return &limitedListener{Listener: l, slots: make(chan struct{}, maxConns), done: make(chan struct{})}
}

type limitedListener struct {
	net.Listener
	slots     chan struct{} // one value per open connection
	done      chan struct{} // closed by Close
	closeOnce sync.Once
}

// Accept waits for a free slot, then for a connection.
func (l *limitedListener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &limitedConn{Conn: c, release: func() { <-l.slots }}, nil
}

// Close closes the listener and wakes an Accept waiting for a slot.
func (l *limitedListener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// limitedConn is a connection of a limitedListener: closing it frees its slot, and
// it records the read deadline the server sets.
type limitedConn struct {
	net.Conn
	release      func()
	releaseOnce  sync.Once
	readDeadline atomic.Int64 // UnixNano of the server's last read deadline; 0 for none
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.releaseOnce.Do(c.release)
	return err
}

func (c *limitedConn) SetDeadline(t time.Time) error {
	c.recordReadDeadline(t)
	return c.Conn.SetDeadline(t)
}

func (c *limitedConn) SetReadDeadline(t time.Time) error {
	c.recordReadDeadline(t)
	return c.Conn.SetReadDeadline(t)
}

// CloseWrite half-closes a TCP connection, as net/http does before closing one it
// answered with an error, so that the client reads the answer rather than a reset.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *limitedConn) recordReadDeadline(t time.Time) {
	var n int64
	if !t.IsZero() {
		n = t.UnixNano()
	}
	c.readDeadline.Store(n)
}

// serverReadDeadline is the read deadline the server set last (zero for none).
func (c *limitedConn) serverReadDeadline() time.Time {
	if n := c.readDeadline.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// connKey is the request context key of the connection (see NewServer).
type connKey struct{}

// bodyRate returns the middleware that cuts a request body arriving slower than
// rate bytes per second on average once grace has passed: before each read of the
// body the connection's read deadline is set to when the bytes read so far would be
// too few, never later than the deadline the server set for the whole request
// (http.read_timeout). A body cut so fails to read with os.ErrDeadlineExceeded, and
// the connection is closed after the answer. A rate of 0, a request without a body,
// or a server not on a Listener leaves the body alone.
func bodyRate(rate int64, grace time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		if rate <= 0 {
			return next
		}
		return func(c echo.Context) error {
			r := c.Request()
			conn, _ := r.Context().Value(connKey{}).(*limitedConn)
			if conn == nil || r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
				return next(c)
			}
			b := &rateBody{body: r.Body, conn: conn, header: c.Response().Header(), rate: rate,
				start: time.Now().Add(grace), whole: conn.serverReadDeadline()}
			b.setDeadline()
			r.Body = b
			return next(c)
		}
	}
}

// rateBody is a request body read under bodyRate's deadline.
type rateBody struct {
	body   io.ReadCloser
	conn   *limitedConn
	header http.Header // the answer's, to close the connection after a cut body
	rate   int64
	start  time.Time // when the rate starts to count: the request's start plus grace
	whole  time.Time // the server's deadline for the whole request; zero for none
	read   int64
}

func (b *rateBody) Read(p []byte) (int, error) {
	n, err := b.body.Read(p)
	b.read += int64(n)
	switch {
	case err == nil:
		b.setDeadline()
	case errors.Is(err, io.EOF):
		// The whole body is in: back to the server's own deadline, which its
		// background read of the connection waits under while the handler runs.
		_ = b.conn.Conn.SetReadDeadline(b.whole)
	case errors.Is(err, os.ErrDeadlineExceeded):
		b.header.Set(echo.HeaderConnection, "close")
	}
	return n, err
}

func (b *rateBody) Close() error { return b.body.Close() }

// setDeadline sets the connection's read deadline to when the bytes read so far fall
// under the rate, or the whole request's deadline if that is sooner. It sets the
// connection itself, not through limitedConn, which records only the server's own.
func (b *rateBody) setDeadline() {
	d := b.start.Add(time.Duration(float64(b.read) / float64(b.rate) * float64(time.Second)))
	if !b.whole.IsZero() && b.whole.Before(d) {
		d = b.whole
	}
	_ = b.conn.Conn.SetReadDeadline(d)
}
