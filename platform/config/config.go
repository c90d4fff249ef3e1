// Package config loads Mailroom's configuration from built-in defaults, a YAML file,
// MAILROOM_* environment variables and command-line flags, in that order of
// precedence, and refuses unknown keys and invalid values by name.
package config

import (
	"fmt"
	"io"
	"math"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Config is the whole configuration of one Mailroom process. Every field maps to a
// dotted key (its koanf tags) documented in config.yaml.
type Config struct {
	// Modules is the modules key (flag --modules): the role of this process, which
	// modules it runs. ModulesAll, the default, runs every module in one process;
	// ModulesAPI and ModulesDelivery split them between processes that meet on Kafka.
	Modules string `koanf:"modules"`
	// HTTP is the http.* keys: where the API listens and how it shuts down.
	HTTP HTTP `koanf:"http"`
	// DB is the db.* keys: the SQLite file of this instance.
	DB DB `koanf:"db"`
	// Broker is the broker.* keys: Go channels or Kafka.
	Broker Broker `koanf:"broker"`
	// Kafka is the kafka.* keys, which matter only when broker.kind is kafka (they
	// are validated regardless).
	Kafka Kafka `koanf:"kafka"`
	// Topics is the topics.* keys: topic names, and how Kafka creates them.
	Topics Topics `koanf:"topics"`
	// Delivery is the delivery.* keys: transport and send concurrency.
	Delivery Delivery `koanf:"delivery"`
	// SMTP is the smtp.* keys: the mail server, and the default From.
	SMTP SMTP `koanf:"smtp"`
	// Retry is the retry.* keys: the backoff of transient send failures.
	Retry Retry `koanf:"retry"`
	// Auth is the auth.* keys: configured API keys and rate limits.
	Auth Auth `koanf:"auth"`
	// Outbox is the outbox.* keys: relay batch size and polling.
	Outbox Outbox `koanf:"outbox"`
	// Log is the log.* keys: level and format of the process's logs.
	Log Log `koanf:"log"`
	// Retention is the retention.* keys: how long finished mail is kept.
	Retention Retention `koanf:"retention"`
	// Limits is the limits.* keys: how many attachments an email may carry, and
	// how large they may be.
	Limits Limits `koanf:"limits"`
	// Webhooks is the webhooks.* keys: how events are POSTed to webhook endpoints.
	Webhooks Webhooks `koanf:"webhooks"`
}

// Webhooks configures the webhooks module: where it may send, how long a try may
// take, how many run at once, how failed tries are retried and when an endpoint
// that keeps failing is disabled.
type Webhooks struct {
	// AllowPrivateTargets is webhooks.allow_private_targets: when false (the
	// default), an endpoint whose host is, or resolves only to, a loopback,
	// private, link-local, unspecified or multicast address is refused at creation,
	// and every connection to such an address is refused at connect time (so DNS
	// rebinding reaches nothing). Set it for receivers on the same machine or
	// network.
	AllowPrivateTargets bool `koanf:"allow_private_targets"`
	// Timeout is webhooks.timeout, the longest one try may take, from connecting
	// to reading the answer; a try past it fails.
	Timeout time.Duration `koanf:"timeout"`
	// Concurrency is webhooks.concurrency, the most tries in flight at once over
	// all endpoints (1 to 1024); one endpoint gets at most 4 of them.
	Concurrency int `koanf:"concurrency"`
	// RetryInitial is webhooks.retry_initial, the wait after a delivery's first
	// failed try.
	RetryInitial time.Duration `koanf:"retry_initial"`
	// RetryMultiplier is webhooks.retry_multiplier, the factor (at least 1) each
	// later wait grows by.
	RetryMultiplier float64 `koanf:"retry_multiplier"`
	// RetryMaxDelay is webhooks.retry_max_delay, the cap on any one wait (at least
	// retry_initial). Waits are jittered by up to 20%.
	RetryMaxDelay time.Duration `koanf:"retry_max_delay"`
	// RetryFor is webhooks.retry_for: a delivery whose try fails this long or
	// longer after the event was fanned out is failed for good.
	RetryFor time.Duration `koanf:"retry_for"`
	// DisableAfterFailures is webhooks.disable_after_failures: an endpoint whose
	// consecutive failed tries (over all its deliveries) reach this many, while
	// it has been failing for at least disable_after, is disabled. 0 never
	// disables one for failing.
	DisableAfterFailures int `koanf:"disable_after_failures"`
	// DisableAfter is webhooks.disable_after, how long an endpoint must have been
	// failing (since its first failed try after its last success) before
	// disable_after_failures disables it.
	DisableAfter time.Duration `koanf:"disable_after"`
}

// Limits bounds what one email may carry beyond its text. The request body must
// be able to hold the largest email these allow, so http.max_body_bytes must be at
// least BodyBytesNeeded.
type Limits struct {
	// MaxAttachments is limits.max_attachments, the most attachments one email may
	// have (10); 0 refuses every attachment.
	MaxAttachments int `koanf:"max_attachments"`
	// MaxAttachmentBytes is limits.max_attachment_bytes, the decoded bytes of all
	// of one email's attachments together (10 MiB). In the request they are base64,
	// a third larger; in the SendEmail command (the outbox row, the Kafka record)
	// too.
	MaxAttachmentBytes int64 `koanf:"max_attachment_bytes"`
}

// BodyBytesNeeded is the smallest http.max_body_bytes that lets through an email
// with attachments up to the limits: their base64 (4 bytes per 3) plus
// BodyBytesBesideAttachments for the rest of the email. With attachments off
// (MaxAttachments 0) it is 1024, the least body limit there is.
func (l Limits) BodyBytesNeeded() int64 {
	if l.MaxAttachments == 0 {
		return 1024
	}
	return 4*((l.MaxAttachmentBytes+2)/3) + BodyBytesBesideAttachments
}

// MaxAttachmentBytes is the most limits.max_attachment_bytes may be: 16 MiB. An
// email's SendEmail command carries its attachments base64-encoded (about 21 MiB
// of them) beside its bodies, and must fit in one Kafka record
// (broker.MaxMessageBytes, 32 MiB).
const MaxAttachmentBytes = 16 << 20

// BodyBytesBesideAttachments is what BodyBytesNeeded allows for an email's fields
// other than its attachments (addresses, subject, bodies, metadata, headers, the
// JSON around them): 1 MiB, the body limit before attachments existed.
const BodyBytesBesideAttachments = 1 << 20

// Retention says how long each module keeps finished mail before deleting it, in
// batches, by a background job of each module. Mail that is not final (scheduled,
// queued, retrying) is never deleted.
type Retention struct {
	// Emails is retention.emails: emails sent (every recipient final) longer ago
	// than this are deleted with their bodies, recipients, tags and timeline, and
	// so are their rendered messages and delivery records, and dead letters
	// replayed or discarded longer ago. 0 keeps them for ever.
	Emails time.Duration `koanf:"emails"`
	// DeadLetters is retention.dead_letters: letters still parked (never replayed
	// nor discarded) longer than this are deleted, with their dead emails and
	// those emails' delivery records. 0 keeps them until discarded and for ever.
	DeadLetters time.Duration `koanf:"dead_letters"`
	// Interval is retention.interval, the time between two sweeps.
	Interval time.Duration `koanf:"interval"`
	// BatchSize is retention.batch_size, the most rows one transaction deletes:
	// small, so the one writer is never held for long.
	BatchSize int `koanf:"batch_size"`
}

// HTTP configures the API server.
type HTTP struct {
	// Addr is http.addr, the host:port the API listens on (port 0 picks a free one).
	// Only on a loopback address does a first start without keys make an admin key.
	Addr string `koanf:"addr"`
	// MaxBodyBytes is http.max_body_bytes, the largest request body in bytes; a
	// larger one is answered 413. It must be at least Limits.BodyBytesNeeded, so
	// that an email with attachments up to the limits can be sent (by default
	// 15029592: base64 of 10 MiB plus 1 MiB); with attachments off, at least 1024.
	// A batch shares it: its emails' attachments together fit in one body.
	MaxBodyBytes int64 `koanf:"max_body_bytes"`
	// ShutdownTimeout is http.shutdown_timeout, the longest shutdown may take. The
	// HTTP server gets half of it to finish the requests in flight; then every
	// connection still open (idle, trickling, not reading its answer) is closed, and
	// the process still exits 0.
	ShutdownTimeout time.Duration `koanf:"shutdown_timeout"`
	// TrustedProxies is http.trusted_proxies, the addresses or CIDR ranges of the
	// reverse proxies in front of Mailroom. A request's client address (in logs) is
	// its connection's peer, unless that peer is listed here: then it is the
	// address X-Forwarded-For names. Empty, X-Forwarded-For is never believed.
	TrustedProxies []string `koanf:"trusted_proxies"`
	// ReadHeaderTimeout is http.read_header_timeout, how long a client may take to
	// send a request's header from its first byte (10s): a slow-header client holds a
	// connection no longer. At most http.read_timeout.
	ReadHeaderTimeout time.Duration `koanf:"read_header_timeout"`
	// ReadTimeout is http.read_timeout, how long a whole request, header and body,
	// may take to arrive (30s: a 1 MB body at 35 KB/s, which any client sending
	// email has).
	ReadTimeout time.Duration `koanf:"read_timeout"`
	// WriteTimeout is http.write_timeout, how long the server may take to handle a
	// request and write its answer, from the end of its header (30s: an answer the
	// client does not read holds its connection no longer).
	WriteTimeout time.Duration `koanf:"write_timeout"`
	// IdleTimeout is http.idle_timeout, how long a keep-alive connection may wait
	// for its next request (60s: longer than the usual clients' 30-90 s pools keep
	// an idle connection, short enough that idle ones do not pile up).
	IdleTimeout time.Duration `koanf:"idle_timeout"`
	// MaxConnections is http.max_connections, the most HTTP connections open at
	// once (1024). Over it, new connections wait in the kernel's listen backlog
	// (refused once that is full) and take no file descriptor from the database or
	// delivery. Lowered at start, with a warning, to what the process's file limit
	// leaves once those are provided for.
	MaxConnections int `koanf:"max_connections"`
	// MinBodyRate is http.min_body_rate, the least average rate in bytes per second
	// at which a request body must arrive once http.min_body_rate_grace has passed
	// (4096: a trickled body is cut long before read_timeout; a 1 MB body at this
	// rate takes 4 minutes, so no real client is near it). 0 turns it off.
	MinBodyRate int64 `koanf:"min_body_rate"`
	// MinBodyRateGrace is http.min_body_rate_grace, how long a body may take before
	// http.min_body_rate applies (5s: a slow start or a lost packet is not cut).
	MinBodyRateGrace time.Duration `koanf:"min_body_rate_grace"`
}

// DB configures the SQLite database file.
type DB struct {
	// Path is db.path, the SQLite database file; its directory is created if
	// missing. Each instance needs its own.
	Path string `koanf:"path"`
	// MinFreeBytes is db.min_free_bytes, the disk reserve: while the file system
	// holding the database has less free, POST, PUT and PATCH under /api are
	// answered 507 insufficient_storage (and /readyz 503), so SQLite never fills
	// the disk; they pass again by themselves once space is freed. 0 turns it off.
	MinFreeBytes int64 `koanf:"min_free_bytes"`
}

// Broker names the pub/sub implementation; it is the one switch between the embedded
// Go-channel broker and Kafka.
type Broker struct {
	// Kind is broker.kind: BrokerGoChannel or BrokerKafka (flag --broker).
	Kind string `koanf:"kind"`
}

// Broker kinds accepted by broker.kind.
const (
	// BrokerGoChannel is the embedded in-process broker: one instance, no external
	// service, delivery concurrency set by delivery.concurrency.
	BrokerGoChannel = "gochannel"
	// BrokerKafka uses the kafka.* brokers, so several instances can share the
	// work; delivery.concurrency sends run at once on each, from any partitions.
	BrokerKafka = "kafka"
)

// Roles accepted by the modules key (flag --modules). A role names a job, not a
// list of modules, so that a module's work can move from one role to the other
// without changing what an operator runs.
const (
	// ModulesAll runs every module in one process, on either broker: today's
	// single Mailroom.
	ModulesAll = "all"
	// ModulesAPI runs the modules that accept and answer: API keys, emails, dead
	// letters and webhooks, the /api routes and the console. It sends nothing.
	ModulesAPI = "api"
	// ModulesDelivery runs only the delivery module: it consumes topics.send in
	// kafka.consumer_group, sends, and reports outcomes on topics.events. Over HTTP
	// it serves /healthz, /readyz and /metrics only.
	ModulesDelivery = "delivery"
)

// CheckModules refuses a role that is not ModulesAll, ModulesAPI or
// ModulesDelivery, and a split role (api or delivery) on Go channels: the
// in-process broker reaches no other process, so an API would accept mail no
// worker ever sends. The error names the value and is written for the operator
// who typed --modules.
func CheckModules(modules, brokerKind string) error {
	switch modules {
	case ModulesAll:
		return nil
	case ModulesAPI, ModulesDelivery:
	default:
		return fmt.Errorf("%q is not %s, %s or %s", modules, ModulesAll, ModulesAPI, ModulesDelivery)
	}
	if brokerKind == BrokerGoChannel {
		return fmt.Errorf("--modules %s needs broker.kind %s: only --modules %s runs on Go channels (broker.kind %s), which reach no other process",
			modules, BrokerKafka, ModulesAll, BrokerGoChannel)
	}
	return nil
}

// Kafka configures the Kafka pub/sub, used when broker.kind is kafka.
type Kafka struct {
	// Brokers is kafka.brokers, the bootstrap brokers as host:port (comma-separated
	// in the environment).
	Brokers []string `koanf:"brokers"`
	// ConsumerGroup is kafka.consumer_group, the group delivery reads topics.send in;
	// every instance shares it so each email is sent once.
	ConsumerGroup string `koanf:"consumer_group"`
}

// Topics names the topics and how Kafka creates them.
type Topics struct {
	// Send is topics.send, where SendEmail commands wait to be sent.
	Send string `koanf:"send"`
	// DeadLetter is topics.dead_letter, where emails that failed for good go.
	DeadLetter string `koanf:"dead_letter"`
	// Events is topics.events, where modules publish what happened to an email.
	// The three topics must differ.
	Events string `koanf:"events"`
	// Lifecycle is topics.lifecycle, where the emails module publishes each email's
	// lifecycle events (modules/emails/contract.Event, one per message, keyed by
	// email id) for the webhooks module and for any other service that reads it in
	// a consumer group of its own. It must differ from the other three.
	Lifecycle string `koanf:"lifecycle"`
	// Suppressions is topics.suppressions, the suppression list on Kafka: a
	// compacted topic keyed by address, each record the address's latest state
	// (modules/suppressions/contract.Changed). Every instance that needs the list
	// reads all of it into a table of its own, so a new or wiped instance rebuilds
	// the list from the topic. It must differ from the other four.
	Suppressions string `koanf:"suppressions"`
	// Partitions is topics.partitions, the partitions of each topic created on
	// Kafka, from 1 to MaxPartitions; it is also the number of outbox relay workers
	// there. An existing topic keeps its partitions: `mailroom kafka
	// grow-partitions` raises them to this count.
	Partitions int `koanf:"partitions"`
	// ReplicationFactor is topics.replication_factor, the replicas of each created
	// partition on Kafka (3 in production).
	ReplicationFactor int `koanf:"replication_factor"`
	// MinInsyncReplicas is min.insync.replicas of created topics; 0 means
	// replication_factor-1 (2 of 3), at least 1.
	MinInsyncReplicas int `koanf:"min_insync_replicas"`
	// RetryTiers is topics.retry_tiers, the delays (durations with a unit) of the
	// retry topics on Kafka: a deferred recipient's next try waits in the topic of
	// the largest tier not longer than its delay (RetryTopic), not on one worker's
	// disk. Each tier is a topic named after topics.send; see Topics.RetryTierDelays.
	RetryTiers []string `koanf:"retry_tiers"`
}

// RetryTierDelays is topics.retry_tiers parsed, shortest first. Validate has
// checked every entry, so an entry that does not parse (never after Load) is left out.
func (t Topics) RetryTierDelays() []time.Duration {
	out := make([]time.Duration, 0, len(t.RetryTiers))
	for _, s := range t.RetryTiers {
		if d, err := time.ParseDuration(s); err == nil && d > 0 {
			out = append(out, d)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// RetryTopic is the Kafka topic of one retry tier of the send topic:
// "<send>.retry.<tier>", the tier written in its largest whole unit (email.send.retry.5s,
// email.send.retry.10m, email.send.retry.1h), so that 120s and 2m name one topic.
func RetryTopic(send string, tier time.Duration) string {
	return send + ".retry." + TierName(tier)
}

// TierName is a tier's delay in its largest whole unit of h, m, s or ms: the name
// of its topic's suffix and of its metrics label.
func TierName(tier time.Duration) string {
	for _, u := range []struct {
		d    time.Duration
		name string
	}{{time.Hour, "h"}, {time.Minute, "m"}, {time.Second, "s"}} {
		if tier >= u.d && tier%u.d == 0 {
			return strconv.FormatInt(int64(tier/u.d), 10) + u.name
		}
	}
	return strconv.FormatInt(tier.Milliseconds(), 10) + "ms"
}

// MaxPartitions bounds topics.partitions. Partitions are Kafka's unit of parallel
// consumption, and Mailroom runs one outbox publisher per partition, each with up
// to 32 rows in hand; 1024 leaves room far past the few dozen partitions a large
// deployment uses, and keeps those rows, and Sarama's per-partition buffers, bounded.
const MaxPartitions = 1024

// MinISR is the min.insync.replicas Mailroom creates topics with.
func (t Topics) MinISR() int {
	if t.MinInsyncReplicas > 0 {
		return t.MinInsyncReplicas
	}
	return max(1, t.ReplicationFactor-1)
}

// Delivery configures how emails leave Mailroom.
type Delivery struct {
	// Transport is capture (store the rendered message, send nothing) or smtp.
	Transport string `koanf:"transport"`
	// Concurrency is the number of sends in flight at once, on either broker; never
	// two of one email.
	Concurrency int `koanf:"concurrency"`
}

// Transports accepted by delivery.transport.
const (
	// TransportCapture renders and stores each message but sends nothing, for
	// development and tests; every send succeeds.
	TransportCapture = "capture"
	// TransportSMTP sends through the server the smtp.* keys name.
	TransportSMTP = "smtp"
)

// SMTP configures the smtp transport.
type SMTP struct {
	// Host is smtp.host, the mail server's host name or address.
	Host string `koanf:"host"`
	// Port is smtp.port, the mail server's TCP port (1 to 65535).
	Port int `koanf:"port"`
	// Username is smtp.username; when set, sends authenticate with AUTH PLAIN, and
	// when empty they do not authenticate.
	Username string `koanf:"username"`
	// Password is smtp.password, sent with Username; it travels only over TLS or to
	// a loopback host.
	Password Secret `koanf:"password"`
	// TLS is smtp.tls: none, starttls (required, not opportunistic) or tls
	// (implicit TLS, usually port 465).
	TLS string `koanf:"tls"`
	// From is smtp.from, the From of emails that name none, e.g.
	// "Mailroom <mailroom@localhost>".
	From string `koanf:"from"`
	// Timeout is smtp.timeout, a duration bounding both the TCP connect and each SMTP
	// command's round trip.
	Timeout time.Duration `koanf:"timeout"`
	// HeloName is smtp.helo_name, the name Mailroom gives itself in EHLO; empty
	// means the machine's host name. Receiving servers check it against the
	// sending address's reverse DNS, so set it to that name in production. The
	// delivery module checks its syntax (a domain or an address literal) with the
	// rest of its SMTP settings.
	HeloName string `koanf:"helo_name"`
}

// Retry is the retry policy of deferred recipients (a 4xx reply), in the terms of
// Spring's @RetryableTopic (MaxAttempts counts the first try) plus what mail needs:
// an age after which a recipient still deferred fails, and jitter. The defaults keep
// retrying for a day, the first retries minutes apart (greylisting).
type Retry struct {
	// MaxAttempts is retry.max_attempts, the tries of one send or replay in all
	// (at least 1; 1 means no retry).
	MaxAttempts int `koanf:"max_attempts"`
	// InitialInterval is retry.initial_interval, the wait (a duration) between the
	// first try and the second.
	InitialInterval time.Duration `koanf:"initial_interval"`
	// Multiplier is retry.multiplier, the factor (at least 1) each later wait grows by.
	Multiplier float64 `koanf:"multiplier"`
	// MaxInterval is retry.max_interval, the cap on any one wait (at least
	// initial_interval).
	MaxInterval time.Duration `koanf:"max_interval"`
	// MaxAge is retry.max_age: a recipient deferred this long or longer after the
	// first try of its email (or replay) fails, attempts left or not. 0 means no
	// limit but max_attempts. An outage of the mail server burns no attempt, but
	// counts toward this age.
	MaxAge time.Duration `koanf:"max_age"`
	// Jitter is retry.jitter, the most each wait is lengthened or shortened by, as a
	// fraction of it (0 to 1): emails deferred together are not retried together.
	Jitter float64 `koanf:"jitter"`
}

// Auth configures API keys and how fast each key may call the API.
type Auth struct {
	// APIKeys are accepted as Authorization: Bearer <key>, with admin scope; more
	// keys are made with `mailroom keys create`.
	APIKeys []Secret `koanf:"api_keys"`
	// RateLimit is the requests per second each key may make on average (a token
	// bucket per key); over it the API answers 429 with Retry-After.
	RateLimit float64 `koanf:"rate_limit"`
	// RateBurst is how many requests a key may make at once above RateLimit.
	RateBurst int `koanf:"rate_burst"`
	// QuotaEmailsPerDay is auth.quota_emails_per_day, the emails each key may send
	// per UTC day (0: no limit); over it POST /api/emails is 429 quota_exceeded
	// with Retry-After until midnight UTC.
	QuotaEmailsPerDay int64 `koanf:"quota_emails_per_day"`
	// QuotaBytesPerDay is auth.quota_bytes_per_day, the bytes of email (addresses,
	// subject, bodies, tags, metadata) each key may send per UTC day (0: no limit).
	QuotaBytesPerDay int64 `koanf:"quota_bytes_per_day"`
}

// Outbox tunes the outbox relay.
type Outbox struct {
	// BatchSize is the most rows one relay worker publishes in one go.
	BatchSize int `koanf:"batch_size"`
	// PollInterval is how often the relay looks for due rows when nothing woke it.
	PollInterval time.Duration `koanf:"poll_interval"`
}

// Log configures structured logging.
type Log struct {
	// Level is log.level, the least severe level written: trace, debug, info, warn
	// or error. Debug shows each email's SMTP conversation; trace adds Watermill's
	// internals (see docs/logs.md).
	Level string `koanf:"level"`
	// Format is log.format: text (logfmt-like key=value) or json (one object a line).
	Format string `koanf:"format"`
}

// Secret is a string that never prints itself, so passwords and keys stay out of logs,
// errors and config dumps.
type Secret string

// String redacts the secret.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// MarshalText redacts the secret in JSON, YAML and text encodings.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Format redacts the secret under every fmt verb. String alone is not enough: %#v
// (and so %#v of any struct holding a Secret) and wrong verbs such as %d print the
// underlying string without calling it.
func (s Secret) Format(f fmt.State, verb rune) {
	out := s.String()
	if verb == 'q' || verb == 'v' && f.Flag('#') {
		out = strconv.Quote(out)
	}
	_, _ = io.WriteString(f, out)
}

// Reveal returns the secret itself, for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// Validate reports every invalid value, naming its key.
func (c *Config) Validate() error {
	return c.validate(nil)
}

// validate is Validate; where, when not nil, says where a key's value came from (a
// file and line, a variable), for Load's errors.
func (c *Config) validate(where func(key string) string) error {
	var errs []string
	bad := func(key, format string, args ...any) {
		msg := key + ": " + fmt.Sprintf(format, args...)
		if where != nil && where(key) != "" {
			msg += " (" + where(key) + ")"
		}
		errs = append(errs, msg)
	}
	if _, _, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		bad("http.addr", "not host:port: %v", err)
	}
	if c.Limits.MaxAttachments < 0 || c.Limits.MaxAttachments > 1000 {
		bad("limits.max_attachments", "must be between 0 (no attachments) and 1000, got %d", c.Limits.MaxAttachments)
	}
	if c.Limits.MaxAttachmentBytes < 1 || c.Limits.MaxAttachmentBytes > MaxAttachmentBytes {
		bad("limits.max_attachment_bytes", "must be between 1 and %d (16 MiB: the send command carries them, base64, in one Kafka record), got %d",
			MaxAttachmentBytes, c.Limits.MaxAttachmentBytes)
	} else if need := c.Limits.BodyBytesNeeded(); c.HTTP.MaxBodyBytes < need {
		bad("http.max_body_bytes", "must be at least %d to hold an email with limits.max_attachment_bytes (%d) of attachments "+
			"(base64 of it plus 1 MiB for the rest), got %d; raise it, or lower limits.max_attachment_bytes "+
			"(limits.max_attachments 0 turns attachments off)", need, c.Limits.MaxAttachmentBytes, c.HTTP.MaxBodyBytes)
	}
	if c.HTTP.ShutdownTimeout <= 0 {
		bad("http.shutdown_timeout", "must be positive")
	}
	for _, p := range c.HTTP.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			bad("http.trusted_proxies", "%v", err)
		}
	}
	for _, d := range []struct {
		key   string
		value time.Duration
	}{{"http.read_header_timeout", c.HTTP.ReadHeaderTimeout}, {"http.read_timeout", c.HTTP.ReadTimeout},
		{"http.write_timeout", c.HTTP.WriteTimeout}, {"http.idle_timeout", c.HTTP.IdleTimeout},
		{"http.min_body_rate_grace", c.HTTP.MinBodyRateGrace}} {
		if d.value <= 0 {
			bad(d.key, "must be positive")
		}
	}
	if c.HTTP.ReadHeaderTimeout > c.HTTP.ReadTimeout {
		bad("http.read_header_timeout", "must be at most http.read_timeout (%s), got %s", c.HTTP.ReadTimeout, c.HTTP.ReadHeaderTimeout)
	}
	if c.HTTP.MaxConnections < 1 || c.HTTP.MaxConnections > 1_000_000 {
		bad("http.max_connections", "must be between 1 and 1000000, got %d", c.HTTP.MaxConnections)
	}
	if c.HTTP.MinBodyRate < 0 {
		bad("http.min_body_rate", "must be a number of bytes per second, 0 (off) or more, got %d", c.HTTP.MinBodyRate)
	}
	if strings.TrimSpace(c.DB.Path) == "" {
		bad("db.path", "must not be empty")
	}
	if c.DB.MinFreeBytes < 0 {
		bad("db.min_free_bytes", "must not be negative (0 turns the disk reserve off), got %d", c.DB.MinFreeBytes)
	}
	switch c.Broker.Kind {
	case BrokerGoChannel, BrokerKafka:
		if err := CheckModules(c.Modules, c.Broker.Kind); err != nil {
			bad("modules", "%v", err)
		}
	default:
		bad("broker.kind", "must be %q or %q, got %q", BrokerGoChannel, BrokerKafka, c.Broker.Kind)
	}
	if len(c.Kafka.Brokers) == 0 {
		bad("kafka.brokers", "must list at least one broker")
	}
	for _, b := range c.Kafka.Brokers {
		if _, _, err := net.SplitHostPort(b); err != nil {
			bad("kafka.brokers", "%q is not host:port", b)
		}
	}
	if c.Kafka.ConsumerGroup == "" {
		bad("kafka.consumer_group", "must not be empty")
	}
	topics := map[string]string{"topics.send": c.Topics.Send, "topics.dead_letter": c.Topics.DeadLetter,
		"topics.events": c.Topics.Events, "topics.lifecycle": c.Topics.Lifecycle, "topics.suppressions": c.Topics.Suppressions}
	for key, topic := range topics {
		if !validTopic(topic) {
			bad(key, "%q is not a valid topic name (letters, digits, '.', '_', '-')", topic)
		}
	}
	distinct := map[string]bool{c.Topics.Send: true, c.Topics.DeadLetter: true, c.Topics.Events: true, c.Topics.Lifecycle: true,
		c.Topics.Suppressions: true}
	if len(distinct) != len(topics) {
		bad("topics", "send, dead_letter, events, lifecycle and suppressions must be different topics")
	}
	if len(c.Topics.RetryTiers) == 0 {
		bad("topics.retry_tiers", "must list at least one delay, e.g. 5s,30s,2m,10m,1h")
	}
	for _, tier := range c.Topics.RetryTiers {
		if d, err := time.ParseDuration(tier); err != nil || d < time.Millisecond || d%time.Millisecond != 0 {
			bad("topics.retry_tiers", "%q is not a delay of whole milliseconds with a unit, e.g. 30s", tier)
		}
	}
	if c.Topics.Partitions < 1 || c.Topics.Partitions > MaxPartitions {
		bad("topics.partitions", "must be between 1 and %d, got %d", MaxPartitions, c.Topics.Partitions)
	}
	if c.Topics.ReplicationFactor < 1 {
		bad("topics.replication_factor", "must be at least 1, got %d", c.Topics.ReplicationFactor)
	}
	if c.Topics.MinInsyncReplicas < 0 || c.Topics.MinInsyncReplicas > c.Topics.ReplicationFactor {
		bad("topics.min_insync_replicas", "must be between 0 (automatic) and topics.replication_factor, got %d", c.Topics.MinInsyncReplicas)
	}
	switch c.Delivery.Transport {
	case TransportCapture, TransportSMTP:
	default:
		bad("delivery.transport", "must be %q or %q, got %q", TransportCapture, TransportSMTP, c.Delivery.Transport)
	}
	if c.Delivery.Concurrency < 1 || c.Delivery.Concurrency > 1024 {
		bad("delivery.concurrency", "must be between 1 and 1024, got %d", c.Delivery.Concurrency)
	}
	if c.SMTP.Host == "" {
		bad("smtp.host", "must not be empty")
	}
	if c.SMTP.Port < 1 || c.SMTP.Port > 65535 {
		bad("smtp.port", "must be between 1 and 65535, got %d", c.SMTP.Port)
	}
	switch c.SMTP.TLS {
	case "none", "starttls", "tls":
	default:
		bad("smtp.tls", "must be none, starttls or tls, got %q", c.SMTP.TLS)
	}
	if c.SMTP.From == "" {
		bad("smtp.from", "must not be empty")
	}
	if c.SMTP.Timeout <= 0 {
		bad("smtp.timeout", "must be positive")
	}
	if c.Retry.MaxAttempts < 1 {
		bad("retry.max_attempts", "must be at least 1, got %d", c.Retry.MaxAttempts)
	}
	if c.Retry.InitialInterval <= 0 {
		bad("retry.initial_interval", "must be positive")
	}
	if !(c.Retry.Multiplier >= 1) || math.IsInf(c.Retry.Multiplier, 0) {
		bad("retry.multiplier", "must be a finite number at least 1, got %v", c.Retry.Multiplier)
	}
	if c.Retry.MaxInterval < c.Retry.InitialInterval {
		bad("retry.max_interval", "must be at least retry.initial_interval")
	}
	if c.Retry.MaxAge < 0 {
		bad("retry.max_age", "must not be negative (0 means no limit but retry.max_attempts)")
	}
	if !(c.Retry.Jitter >= 0 && c.Retry.Jitter <= 1) {
		bad("retry.jitter", "must be a fraction from 0 to 1, got %v", c.Retry.Jitter)
	}
	for i, k := range c.Auth.APIKeys {
		if len(k) < 16 {
			bad("auth.api_keys", "key %d is shorter than 16 characters", i)
		}
	}
	if !(c.Auth.RateLimit > 0) || math.IsInf(c.Auth.RateLimit, 0) {
		bad("auth.rate_limit", "must be a positive number of requests per second, got %v", c.Auth.RateLimit)
	}
	if c.Auth.RateBurst < 1 {
		bad("auth.rate_burst", "must be at least 1, got %d", c.Auth.RateBurst)
	}
	if c.Auth.QuotaEmailsPerDay < 0 {
		bad("auth.quota_emails_per_day", "must not be negative (0 means no limit), got %d", c.Auth.QuotaEmailsPerDay)
	}
	if c.Auth.QuotaBytesPerDay < 0 {
		bad("auth.quota_bytes_per_day", "must not be negative (0 means no limit), got %d", c.Auth.QuotaBytesPerDay)
	}
	if c.Outbox.BatchSize < 1 {
		bad("outbox.batch_size", "must be at least 1, got %d", c.Outbox.BatchSize)
	}
	if c.Outbox.PollInterval <= 0 {
		bad("outbox.poll_interval", "must be positive")
	}
	if c.Retention.Emails < 0 {
		bad("retention.emails", "must not be negative (0 keeps emails for ever)")
	}
	if c.Retention.DeadLetters < 0 {
		bad("retention.dead_letters", "must not be negative (0 keeps parked dead letters for ever)")
	}
	if c.Retention.Interval < time.Second {
		bad("retention.interval", "must be at least 1s, got %v", c.Retention.Interval)
	}
	if c.Retention.BatchSize < 1 || c.Retention.BatchSize > 10000 {
		bad("retention.batch_size", "must be between 1 and 10000, got %d", c.Retention.BatchSize)
	}
	c.Webhooks.validate(bad)
	switch c.Log.Level {
	case "trace", "debug", "info", "warn", "error":
	default:
		bad("log.level", "must be trace, debug, info, warn or error, got %q", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		bad("log.format", "must be text or json, got %q", c.Log.Format)
	}
	if len(errs) > 0 {
		return fmt.Errorf("invalid config: %s", strings.Join(errs, "; "))
	}
	return nil
}

// validate reports the invalid webhooks.* values through bad.
func (w Webhooks) validate(bad func(key, format string, args ...any)) {
	if w.Timeout <= 0 {
		bad("webhooks.timeout", "must be positive")
	}
	if w.Concurrency < 1 || w.Concurrency > 1024 {
		bad("webhooks.concurrency", "must be between 1 and 1024, got %d", w.Concurrency)
	}
	if w.RetryInitial <= 0 {
		bad("webhooks.retry_initial", "must be positive")
	}
	if !(w.RetryMultiplier >= 1) || math.IsInf(w.RetryMultiplier, 0) {
		bad("webhooks.retry_multiplier", "must be a finite number at least 1, got %v", w.RetryMultiplier)
	}
	if w.RetryMaxDelay < w.RetryInitial {
		bad("webhooks.retry_max_delay", "must be at least webhooks.retry_initial")
	}
	if w.RetryFor <= 0 {
		bad("webhooks.retry_for", "must be positive")
	}
	if w.DisableAfterFailures < 0 {
		bad("webhooks.disable_after_failures", "must not be negative (0 never disables an endpoint for failing), got %d", w.DisableAfterFailures)
	}
	if w.DisableAfter < 0 {
		bad("webhooks.disable_after", "must not be negative")
	}
}

func validTopic(s string) bool {
	if s == "" || len(s) > 249 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// ParsePrefix reads an entry of http.trusted_proxies: an IP address (one host) or a
// CIDR range.
func ParsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or a CIDR range", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
