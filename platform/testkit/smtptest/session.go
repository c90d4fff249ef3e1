package smtptest

import (
	"errors"
	"io"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// errAuthRequired is the RFC 4954 reply to MAIL FROM before AUTH.
var errAuthRequired = &smtp.SMTPError{
	Code:         530,
	EnhancedCode: smtp.EnhancedCode{5, 7, 0},
	Message:      "Authentication required",
}

// errDropped is returned from a command after the connection was cut on
// purpose; it never reaches the client because the connection is already closed.
var errDropped = errors.New("smtptest: connection dropped during DATA")

// session holds the state of one SMTP session (go-smtp creates one per
// EHLO/HELO, and a new one after STARTTLS).
type session struct {
	srv    *Server
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

// authSession adds AUTH PLAIN. It is a separate type because go-smtp
// advertises AUTH exactly when the session implements smtp.AuthSession.
type authSession struct {
	*session
}

var (
	_ smtp.Session     = (*session)(nil)
	_ smtp.AuthSession = authSession{}
)

func (s *Server) newSession(c *smtp.Conn) (smtp.Session, error) {
	s.mu.Lock()
	s.hellos = append(s.hellos, c.Hostname())
	f := s.takeStepFaultLocked(StepHello)
	s.mu.Unlock()
	if err := s.applyFault(c, f); err != nil {
		return nil, err
	}
	sess := &session{srv: s, conn: c}
	if s.cfg.authEnabled {
		return authSession{sess}, nil
	}
	return sess, nil
}

func (a authSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (a authSession) Auth(mech string) (sasl.Server, error) {
	if err := a.srv.applyFault(a.conn, a.srv.takeStepFault(StepAuth)); err != nil {
		return nil, err
	}
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		cfg := a.srv.cfg
		if (identity != "" && identity != username) || username != cfg.authUser || password != cfg.authPass {
			return smtp.ErrAuthFailed
		}
		a.authed = true
		return nil
	}), nil
}

func (s *session) Mail(from string, _ *smtp.MailOptions) error {
	if err := s.srv.applyFault(s.conn, s.srv.takeStepFault(StepMail)); err != nil {
		return err
	}
	if s.srv.cfg.authEnabled && !s.authed {
		return errAuthRequired
	}
	s.from = from
	s.to = nil
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := s.srv.applyFault(s.conn, s.srv.recordRcpt(to)); err != nil {
		return err
	}
	if err := s.srv.applyFault(s.conn, s.srv.takeStepFault(StepRcpt)); err != nil {
		return err
	}
	s.to = append(s.to, to)
	return nil
}

func (s *session) Data(r io.Reader) error {
	f := s.srv.takeStepFault(StepData)
	if f != nil && f.drop {
		// Read a first chunk so the client is demonstrably mid-transfer,
		// then cut the connection without a reply.
		var buf [64]byte
		_, _ = r.Read(buf[:])
		_ = s.conn.Conn().Close()
		return errDropped
	}

	data, err := io.ReadAll(r)
	if err != nil {
		return err // e.g. smtp.ErrDataTooLarge, which go-smtp turns into 552
	}
	if f != nil {
		return f.err
	}

	if d := s.srv.cfg.replyDelay; d > 0 {
		t := time.NewTimer(d)
		select {
		case <-t.C:
		case <-s.srv.done:
			t.Stop()
			return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Server shutting down"}
		}
	}

	_, isTLS := s.conn.TLSConnectionState()
	s.srv.recordMessage(Message{
		From:  s.from,
		To:    append([]string(nil), s.to...),
		Data:  data,
		TLS:   isTLS,
		Hello: s.conn.Hostname(),
	})
	return nil
}

func (s *session) Reset() {
	s.from = ""
	s.to = nil
}

func (s *session) Logout() error { return nil }

// recordRcpt records a RCPT TO attempt and takes one use of the recipient's
// FailRecipient or DropAtRecipient script, if any.
func (s *Server) recordRcpt(to string) *fault {
	key := normalize(to)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts[key] = append(s.attempts[key], time.Now())
	s.notifyLocked()
	f, ok := s.faults[key]
	if !ok {
		return nil
	}
	if f.remaining > 0 {
		f.remaining--
		if f.remaining == 0 {
			delete(s.faults, key)
		}
	}
	return f
}

// applyFault carries out a script taken for a command: nil
// when there is none, its reply, or, for a drop, the connection closed and an
// error that never reaches the client.
func (s *Server) applyFault(c *smtp.Conn, f *fault) error {
	switch {
	case f == nil:
		return nil
	case f.drop:
		_ = c.Conn().Close()
		return errDropped
	default:
		return f.err
	}
}

func (s *Server) recordMessage(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.Received = time.Now()
	s.messages = append(s.messages, m)
	s.notifyLocked()
}
