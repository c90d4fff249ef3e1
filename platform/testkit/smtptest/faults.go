package smtptest

import (
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/emersion/go-smtp"
)

// Step names a point of an SMTP session where FailAt and DropAt script a fault.
type Step string

// The steps a fault can be scripted at.
const (
	// StepGreeting is the server's first reply, before the client says anything.
	StepGreeting Step = "greeting"
	// StepHello is the reply to the EHLO or HELO that opens a session: the first of
	// a connection and the one after STARTTLS. A client falling back from a
	// refused EHLO to HELO meets the fault twice if it is scripted twice.
	StepHello Step = "hello"
	// StepAuth is the reply to AUTH, on a server made WithAuth.
	StepAuth Step = "auth"
	// StepMail is the reply to MAIL FROM.
	StepMail Step = "mail"
	// StepRcpt is the reply to every RCPT TO, whatever the recipient. A
	// FailRecipient script for the recipient takes precedence.
	StepRcpt Step = "rcpt"
	// StepData is the reply to the end of data, after the whole message was
	// received (the DATA command itself is always answered 354). A drop here reads
	// part of the message and closes, as DropDuringData does.
	StepData Step = "data"
)

// FailAt scripts the server's reply at step for the next `times` times it is
// reached, on any connection: code with a fitting enhanced status code and
// text (421 4.4.2, 451 4.3.0, 454 4.7.0, 530 5.7.0, 535 5.7.8, 550 5.1.1, 554
// 5.7.1 ...).
// times < 0 fails forever; code 0 or times 0 removes the script. It replaces any
// earlier FailAt or DropAt script for step and can be called while clients are
// connected.
//
// A scripted reply does not close the connection (except at StepGreeting, where
// the server closes right after the reply, as a refusing server does); a client is
// expected to QUIT after a 421 or a refused greeting. A message refused at
// StepData is not recorded.
func (s *Server) FailAt(step Step, code int, times int) {
	if code != 0 && (code < 400 || code > 599) {
		panic(fmt.Sprintf("smtptest: FailAt code %d is not a 4xx or 5xx SMTP reply code", code))
	}
	if code == 0 {
		times = 0
	}
	s.setStepFault(step, &fault{err: scriptedReply(code), remaining: times})
}

// FailAtWithReply is FailAt with the reply's text chosen by the test (after the
// code and enhanced code), e.g. a 530 that says "Must issue a STARTTLS command
// first" rather than asking for a login.
func (s *Server) FailAtWithReply(step Step, code int, times int, text string) {
	if code < 400 || code > 599 {
		panic(fmt.Sprintf("smtptest: FailAtWithReply code %d is not a 4xx or 5xx SMTP reply code", code))
	}
	reply := scriptedReply(code)
	reply.Message = text
	s.setStepFault(step, &fault{err: reply, remaining: times})
}

// DropAt makes the server close the connection without a reply at step for the
// next `times` times it is reached: at StepGreeting it closes a connection at once,
// at StepHello, StepAuth, StepMail and StepRcpt once the command arrived (a RCPT TO still
// counts as an attempt), and at StepData after reading part of the message. The
// client sees a network error, not a reply. times < 0 drops forever; times 0
// removes the script. It replaces any earlier FailAt or DropAt script for step.
func (s *Server) DropAt(step Step, times int) {
	s.setStepFault(step, &fault{drop: true, remaining: times})
}

// Hellos returns the names clients gave with every EHLO or HELO that opened a
// session (see StepHello), oldest first, so tests can check what a client calls
// itself.
func (s *Server) Hellos() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.hellos...)
}

func (s *Server) setStepFault(step Step, f *fault) {
	switch step {
	case StepGreeting, StepHello, StepAuth, StepMail, StepRcpt, StepData:
	default:
		panic(fmt.Sprintf("smtptest: unknown step %q", step))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if f.remaining == 0 {
		delete(s.stepFaults, step)
		return
	}
	s.stepFaults[step] = f
}

// takeStepFault consumes one use of step's script and returns it, or nil when none
// applies.
func (s *Server) takeStepFault(step Step) *fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.takeStepFaultLocked(step)
}

func (s *Server) takeStepFaultLocked(step Step) *fault {
	f, ok := s.stepFaults[step]
	if !ok {
		return nil
	}
	if f.remaining > 0 {
		f.remaining--
		if f.remaining == 0 {
			delete(s.stepFaults, step)
		}
	}
	return f
}

// greetingTimeout bounds writing a scripted greeting (and an implicit TLS
// handshake before it) to a client that does not read.
const greetingTimeout = 5 * time.Second

// refuseGreeting answers a connection with f instead of the greeting: it writes the
// scripted reply, unless f drops, and closes. On an implicit-TLS listener the reply
// goes over TLS, as a real SMTPS server's would.
func (s *Server) refuseGreeting(c net.Conn, f *fault) {
	defer c.Close()
	if f.drop {
		return
	}
	_ = c.SetDeadline(time.Now().Add(greetingTimeout))
	if s.cfg.implicitTLS {
		c = tls.Server(c, s.serverTLS)
	}
	e := f.err
	_, _ = fmt.Fprintf(c, "%d %d.%d.%d %s\r\n", e.Code, e.EnhancedCode[0], e.EnhancedCode[1], e.EnhancedCode[2], e.Message)
}

// scriptedReply builds the SMTP reply for a scripted failure, with a fitting
// enhanced status code so clients that parse it see realistic data.
func scriptedReply(code int) *smtp.SMTPError {
	var ec smtp.EnhancedCode
	msg := "Scripted failure"
	switch code {
	case 421:
		ec, msg = smtp.EnhancedCode{4, 4, 2}, "Service not available, closing transmission channel"
	case 450:
		ec, msg = smtp.EnhancedCode{4, 2, 1}, "Mailbox temporarily unavailable"
	case 451:
		ec, msg = smtp.EnhancedCode{4, 3, 0}, "Temporary local problem, try again later"
	case 452:
		ec, msg = smtp.EnhancedCode{4, 2, 2}, "Mailbox full"
	case 454:
		ec, msg = smtp.EnhancedCode{4, 7, 0}, "Temporary authentication failure"
	case 530:
		ec, msg = smtp.EnhancedCode{5, 7, 0}, "Authentication required"
	case 535:
		ec, msg = smtp.EnhancedCode{5, 7, 8}, "Authentication credentials invalid"
	case 550:
		ec, msg = smtp.EnhancedCode{5, 1, 1}, "Mailbox unavailable: no such user"
	case 551:
		ec, msg = smtp.EnhancedCode{5, 1, 6}, "User not local"
	case 552:
		ec, msg = smtp.EnhancedCode{5, 2, 2}, "Mailbox full"
	case 553:
		ec, msg = smtp.EnhancedCode{5, 1, 3}, "Mailbox name not allowed"
	case 554:
		ec, msg = smtp.EnhancedCode{5, 7, 1}, "Rejected by policy"
	default:
		ec = smtp.EnhancedCode{code / 100, 0, 0}
	}
	return &smtp.SMTPError{Code: code, EnhancedCode: ec, Message: msg + " (smtptest)"}
}
