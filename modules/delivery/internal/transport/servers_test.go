package transport_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"sync"
	"testing"

	gosmtp "github.com/emersion/go-smtp"
)

// Small in-process peers for what smtptest does not script: a server that stops
// answering, a server that holds its reply to DATA, and a proxy whose connections
// can be cut.

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func portOf(l net.Listener) int { return l.Addr().(*net.TCPAddr).Port }

// connSet closes every connection it tracks when the test ends or on demand.
type connSet struct {
	mu    sync.Mutex
	conns []net.Conn
}

func (s *connSet) add(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.conns = append(s.conns, c)
}

func (s *connSet) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.conns {
		_ = c.Close()
	}
	s.conns = nil
}

// hungServer accepts connections and then stops answering: at once, or after
// greeting and answering EHLO. stuck receives once the client waits on it.
type hungServer struct {
	l     net.Listener
	stuck chan struct{}
}

func (h *hungServer) port() int { return portOf(h.l) }

func startHungServer(t *testing.T, greet bool) *hungServer {
	h := &hungServer{l: listen(t), stuck: make(chan struct{}, 1)}
	conns := &connSet{}
	t.Cleanup(conns.closeAll)
	signal := func() {
		select {
		case h.stuck <- struct{}{}:
		default:
		}
	}
	go func() {
		for {
			c, err := h.l.Accept()
			if err != nil {
				return
			}
			conns.add(c)
			go func() {
				if greet {
					r := bufio.NewReader(c)
					_, _ = io.WriteString(c, "220 hung.test ESMTP\r\n")
					line, err := r.ReadString('\n')
					if err != nil || !strings.HasPrefix(strings.ToUpper(line), "EHLO") {
						return
					}
					_, _ = io.WriteString(c, "250 hung.test\r\n")
					if _, err := r.ReadString('\n'); err != nil { // MAIL FROM, never answered
						return
					}
				}
				signal()
				_, _ = io.Copy(io.Discard, c) // until the client gives up
			}()
		}
	}()
	return h
}

// blockingDataServer accepts everything but holds its reply to DATA until
// release is closed; gotData is closed once the whole message has arrived.
type blockingDataServer struct {
	l           net.Listener
	gotData     chan struct{}
	release     chan struct{}
	gotOnce     sync.Once
	releaseOnce sync.Once
}

func (b *blockingDataServer) port() int { return portOf(b.l) }

// answer lets the held DATA reply go.
func (b *blockingDataServer) answer() { b.releaseOnce.Do(func() { close(b.release) }) }

func startBlockingDataServer(t *testing.T) *blockingDataServer {
	b := &blockingDataServer{l: listen(t), gotData: make(chan struct{}), release: make(chan struct{})}
	srv := gosmtp.NewServer(gosmtp.BackendFunc(func(*gosmtp.Conn) (gosmtp.Session, error) {
		return &blockingSession{b: b}, nil
	}))
	srv.Domain = "blocking.test"
	go func() { _ = srv.Serve(b.l) }()
	t.Cleanup(func() {
		b.answer()
		_ = srv.Close()
	})
	return b
}

type blockingSession struct{ b *blockingDataServer }

func (s *blockingSession) Reset()                                 {}
func (s *blockingSession) Logout() error                          { return nil }
func (s *blockingSession) Mail(string, *gosmtp.MailOptions) error { return nil }
func (s *blockingSession) Rcpt(string, *gosmtp.RcptOptions) error { return nil }
func (s *blockingSession) Data(r io.Reader) error {
	if _, err := io.Copy(io.Discard, r); err != nil {
		return err
	}
	s.b.gotOnce.Do(func() { close(s.b.gotData) })
	<-s.b.release
	return nil
}

// proxy forwards TCP connections to upstream; cut closes the open ones, as a
// server restart or a NAT timeout would.
type proxy struct {
	l     net.Listener
	conns connSet
}

func (p *proxy) port() int { return portOf(p.l) }

func (p *proxy) cut() { p.conns.closeAll() }

func startProxy(t *testing.T, upstream string) *proxy {
	p := &proxy{l: listen(t)}
	t.Cleanup(p.cut)
	go func() {
		for {
			down, err := p.l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", upstream)
			if err != nil {
				_ = down.Close()
				continue
			}
			p.conns.add(down)
			p.conns.add(up)
			go func() { _, _ = io.Copy(up, down); _ = up.Close() }()
			go func() { _, _ = io.Copy(down, up); _ = down.Close() }()
		}
	}()
	return p
}
