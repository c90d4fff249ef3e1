package config_test

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/knadh/koanf/parsers/yaml"
	"github.com/knadh/koanf/providers/file"
	"github.com/knadh/koanf/v2"

	"github.com/mailroom/mailroom/platform/config"
)

// writeFile writes a YAML config file into a fresh temporary directory. The
// directory's name does not hold the test's name (as tb.TempDir's does), so that an
// error naming the file cannot pass a test by quoting the test's name.
func writeFile(tb testing.TB, body string) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "mailroom-config-")
	if err != nil {
		tb.Fatalf("make a temporary directory: %v", err)
	}
	tb.Cleanup(func() { _ = os.RemoveAll(dir) })
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		tb.Fatalf("write config file: %v", err)
	}
	return path
}

// mustLoad loads src and fails the test on error.
func mustLoad(tb testing.TB, src config.Sources) *config.Config {
	tb.Helper()
	cfg, err := config.Load(src)
	if err != nil {
		tb.Fatalf("Load(%+v): %v", src, err)
	}
	return cfg
}

// loadErr loads src and fails the test unless it is refused.
func loadErr(tb testing.TB, src config.Sources) error {
	tb.Helper()
	cfg, err := config.Load(src)
	if err == nil {
		tb.Fatalf("Load(%+v) = %+v, want an error", src, cfg)
	}
	return err
}

func TestLoadWithNoSourcesGivesTheContractDefaults(t *testing.T) {
	cfg := mustLoad(t, config.Sources{})
	checks := []struct {
		key  string
		got  any
		want any
	}{
		{"http.addr", cfg.HTTP.Addr, "127.0.0.1:8080"},
		{"db.path", cfg.DB.Path, "./data/mailroom.db"},
		{"broker.kind", cfg.Broker.Kind, "gochannel"},
		{"kafka.brokers", cfg.Kafka.Brokers, []string{"127.0.0.1:9092"}},
		{"kafka.consumer_group", cfg.Kafka.ConsumerGroup, "email-send-group"},
		{"topics.send", cfg.Topics.Send, "email.send"},
		{"topics.dead_letter", cfg.Topics.DeadLetter, "email.send.dlt"},
		{"topics.partitions", cfg.Topics.Partitions, 3},
		{"topics.replication_factor", cfg.Topics.ReplicationFactor, 1},
		{"delivery.transport", cfg.Delivery.Transport, "capture"},
		{"delivery.concurrency", cfg.Delivery.Concurrency, 16},
		{"smtp.host", cfg.SMTP.Host, "127.0.0.1"},
		{"smtp.port", cfg.SMTP.Port, 1025},
		{"smtp.username", cfg.SMTP.Username, ""},
		{"smtp.password", cfg.SMTP.Password.Reveal(), ""},
		{"smtp.tls", cfg.SMTP.TLS, "starttls"},
		{"smtp.from", cfg.SMTP.From, "Mailroom <mailroom@localhost>"},
		{"smtp.helo_name", cfg.SMTP.HeloName, ""},
		// Mail's defaults, not Spring's (CONTRACT.md's table held 5, 1s and 1m): a
		// deferred recipient is retried for a day, the first retries minutes apart.
		{"retry.max_attempts", cfg.Retry.MaxAttempts, 25},
		{"retry.initial_interval", cfg.Retry.InitialInterval, time.Minute},
		{"retry.multiplier", cfg.Retry.Multiplier, 2.0},
		{"retry.max_interval", cfg.Retry.MaxInterval, 2 * time.Hour},
		{"retry.max_age", cfg.Retry.MaxAge, 24 * time.Hour},
		{"retry.jitter", cfg.Retry.Jitter, 0.15},
		{"auth.api_keys", len(cfg.Auth.APIKeys), 0},
		{"auth.rate_limit", cfg.Auth.RateLimit, 50.0},
		{"auth.rate_burst", cfg.Auth.RateBurst, 100},
		{"http.read_header_timeout", cfg.HTTP.ReadHeaderTimeout, 10 * time.Second},
		{"http.read_timeout", cfg.HTTP.ReadTimeout, 30 * time.Second},
		{"http.write_timeout", cfg.HTTP.WriteTimeout, 30 * time.Second},
		{"http.idle_timeout", cfg.HTTP.IdleTimeout, 60 * time.Second},
		{"http.max_connections", cfg.HTTP.MaxConnections, 1024},
		{"http.min_body_rate", cfg.HTTP.MinBodyRate, int64(4096)},
		{"http.min_body_rate_grace", cfg.HTTP.MinBodyRateGrace, 5 * time.Second},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.key, c.got, c.want)
		}
	}
}

func TestPrecedenceIsDefaultsThenFileThenEnvironmentThenFlags(t *testing.T) {
	path := writeFile(t, "http:\n  addr: 127.0.0.1:1001\nsmtp:\n  host: file.example\n")
	cases := []struct {
		name    string
		file    string
		environ []string
		flags   map[string]string
		want    string
	}{
		{name: "the default holds when nothing sets the key", want: "127.0.0.1:8080"},
		{name: "the file overrides the default", file: path, want: "127.0.0.1:1001"},
		{name: "the environment overrides the default", environ: []string{"MAILROOM_HTTP_ADDR=127.0.0.1:1002"}, want: "127.0.0.1:1002"},
		{name: "the environment overrides the file", file: path, environ: []string{"MAILROOM_HTTP_ADDR=127.0.0.1:1002"}, want: "127.0.0.1:1002"},
		{name: "a flag overrides the file", file: path, flags: map[string]string{"http.addr": "127.0.0.1:1003"}, want: "127.0.0.1:1003"},
		{name: "a flag overrides the environment and the file", file: path,
			environ: []string{"MAILROOM_HTTP_ADDR=127.0.0.1:1002"},
			flags:   map[string]string{"http.addr": "127.0.0.1:1003"}, want: "127.0.0.1:1003"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := mustLoad(t, config.Sources{File: c.file, Environ: c.environ, Flags: c.flags})
			if cfg.HTTP.Addr != c.want {
				t.Errorf("http.addr = %q, want %q", cfg.HTTP.Addr, c.want)
			}
			// A layer replaces only the keys it sets: the file's smtp.host survives
			// an environment and flags that set other keys.
			wantHost := "127.0.0.1"
			if c.file != "" {
				wantHost = "file.example"
			}
			if cfg.SMTP.Host != wantHost {
				t.Errorf("smtp.host = %q, want %q", cfg.SMTP.Host, wantHost)
			}
		})
	}
}

func TestListsFromTheFileAreReplacedWholeByTheEnvironment(t *testing.T) {
	path := writeFile(t, "kafka:\n  brokers: [f1:1, f2:2, f3:3]\n")
	cfg := mustLoad(t, config.Sources{File: path})
	if want := []string{"f1:1", "f2:2", "f3:3"}; !slices.Equal(cfg.Kafka.Brokers, want) {
		t.Fatalf("kafka.brokers from file = %q, want %q", cfg.Kafka.Brokers, want)
	}
	cfg = mustLoad(t, config.Sources{File: path, Environ: []string{"MAILROOM_KAFKA_BROKERS=e1:1"}})
	if want := []string{"e1:1"}; !slices.Equal(cfg.Kafka.Brokers, want) {
		t.Fatalf("kafka.brokers from env over file = %q, want %q", cfg.Kafka.Brokers, want)
	}
}

func TestEnvironmentNamesMapToKeysThatHoldUnderscores(t *testing.T) {
	cases := []struct {
		name  string
		env   string
		check func(*config.Config) (got, want any)
	}{
		{"topics.dead_letter is MAILROOM_TOPICS_DEAD_LETTER", "MAILROOM_TOPICS_DEAD_LETTER=mail.dead",
			func(c *config.Config) (any, any) { return c.Topics.DeadLetter, "mail.dead" }},
		{"kafka.consumer_group is MAILROOM_KAFKA_CONSUMER_GROUP", "MAILROOM_KAFKA_CONSUMER_GROUP=senders",
			func(c *config.Config) (any, any) { return c.Kafka.ConsumerGroup, "senders" }},
		{"topics.replication_factor is MAILROOM_TOPICS_REPLICATION_FACTOR", "MAILROOM_TOPICS_REPLICATION_FACTOR=3",
			func(c *config.Config) (any, any) { return c.Topics.ReplicationFactor, 3 }},
		{"retry.max_attempts is MAILROOM_RETRY_MAX_ATTEMPTS", "MAILROOM_RETRY_MAX_ATTEMPTS=9",
			func(c *config.Config) (any, any) { return c.Retry.MaxAttempts, 9 }},
		{"retry.initial_interval takes a duration", "MAILROOM_RETRY_INITIAL_INTERVAL=250ms",
			func(c *config.Config) (any, any) { return c.Retry.InitialInterval, 250 * time.Millisecond }},
		{"retry.multiplier takes a fraction", "MAILROOM_RETRY_MULTIPLIER=1.5",
			func(c *config.Config) (any, any) { return c.Retry.Multiplier, 1.5 }},
		{"smtp.password is MAILROOM_SMTP_PASSWORD", "MAILROOM_SMTP_PASSWORD=pa=ss,word",
			func(c *config.Config) (any, any) { return c.SMTP.Password.Reveal(), "pa=ss,word" }},
		{"broker.kind is MAILROOM_BROKER_KIND", "MAILROOM_BROKER_KIND=kafka",
			func(c *config.Config) (any, any) { return c.Broker.Kind, "kafka" }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := mustLoad(t, config.Sources{Environ: []string{c.env}})
			if got, want := c.check(cfg); !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
}

func TestEveryKeyHasAnEnvironmentNameThatSetsIt(t *testing.T) {
	// Setting every key from the environment to its default value must be accepted
	// and give the defaults: each key's environment name maps back to that key.
	var environ []string
	for key, def := range config.Defaults() {
		name := config.EnvName(key)
		if want := "MAILROOM_" + strings.ToUpper(strings.ReplaceAll(key, ".", "_")); name != want {
			t.Errorf("EnvName(%q) = %q, want %q", key, name, want)
		}
		var value string
		switch v := def.(type) {
		case []string:
			value = strings.Join(v, ",")
		default:
			value = fmt.Sprint(v)
		}
		environ = append(environ, name+"="+value)
	}
	got := mustLoad(t, config.Sources{Environ: environ})
	want := mustLoad(t, config.Sources{})
	if !reflect.DeepEqual(got, want) {
		t.Errorf("every key set to its default through the environment:\n got %+v\nwant %+v", got, want)
	}
}

func TestListsInTheEnvironmentAndFlagsAreCommaSeparated(t *testing.T) {
	keyA, keyB := "key-aaaaaaaaaaaaaaaa", "key-bbbbbbbbbbbbbbbb"
	cases := []struct {
		name     string
		src      config.Sources
		brokers  []string
		wantKeys []string
	}{
		{name: "two brokers from the environment",
			src:     config.Sources{Environ: []string{"MAILROOM_KAFKA_BROKERS=a:1,b:2"}},
			brokers: []string{"a:1", "b:2"}},
		{name: "spaces around the commas are trimmed",
			src:     config.Sources{Environ: []string{"MAILROOM_KAFKA_BROKERS= a:1 , b:2 "}},
			brokers: []string{"a:1", "b:2"}},
		{name: "two API keys from the environment",
			src:      config.Sources{Environ: []string{"MAILROOM_AUTH_API_KEYS=" + keyA + "," + keyB}},
			brokers:  []string{"127.0.0.1:9092"},
			wantKeys: []string{keyA, keyB}},
		{name: "an empty variable means an empty list",
			src:     config.Sources{Environ: []string{"MAILROOM_AUTH_API_KEYS="}},
			brokers: []string{"127.0.0.1:9092"}},
		{name: "brokers from a flag",
			src:     config.Sources{Flags: map[string]string{"kafka.brokers": "x:1,y:2,z:3"}},
			brokers: []string{"x:1", "y:2", "z:3"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := mustLoad(t, c.src)
			if !slices.Equal(cfg.Kafka.Brokers, c.brokers) {
				t.Errorf("kafka.brokers = %q, want %q", cfg.Kafka.Brokers, c.brokers)
			}
			var keys []string
			for _, k := range cfg.Auth.APIKeys {
				keys = append(keys, k.Reveal())
			}
			if !slices.Equal(keys, c.wantKeys) {
				t.Errorf("auth.api_keys = %q, want %q", keys, c.wantKeys)
			}
		})
	}
}

func TestEnvironmentVariablesWithoutThePrefixAreIgnored(t *testing.T) {
	cfg := mustLoad(t, config.Sources{Environ: []string{
		"PATH=/usr/bin", "HTTP_ADDR=nonsense", "MAILROOMHTTP_ADDR=nonsense", "NO_EQUALS_SIGN", "mailroom_http_addr=nonsense",
	}})
	if cfg.HTTP.Addr != "127.0.0.1:8080" {
		t.Errorf("http.addr = %q, want the default", cfg.HTTP.Addr)
	}
}

func TestUnknownKeysAreRefusedByName(t *testing.T) {
	cases := []struct {
		name string
		src  func(testing.TB) config.Sources
		want []string // every one must appear in the error
	}{
		{"a misspelt key in the file", func(tb testing.TB) config.Sources {
			return config.Sources{File: writeFile(tb, "http:\n  adress: 127.0.0.1:1\n")}
		}, []string{"http.adress"}},
		{"an unknown section in the file", func(tb testing.TB) config.Sources {
			return config.Sources{File: writeFile(tb, "rabbit:\n  url: amqp://x\n")}
		}, []string{"rabbit.url"}},
		{"a key one level too deep in the file", func(tb testing.TB) config.Sources {
			return config.Sources{File: writeFile(tb, "smtp:\n  tls:\n    mode: none\n")}
		}, []string{"smtp.tls.mode"}},
		{"an unknown MAILROOM_ variable", func(testing.TB) config.Sources {
			return config.Sources{Environ: []string{"MAILROOM_TOPICS_DEADLETTER=x"}}
		}, []string{"MAILROOM_TOPICS_DEADLETTER"}},
		{"a variable naming a section rather than a key", func(testing.TB) config.Sources {
			return config.Sources{Environ: []string{"MAILROOM_SMTP=x"}}
		}, []string{"MAILROOM_SMTP"}},
		{"an unknown flag key", func(testing.TB) config.Sources {
			return config.Sources{Flags: map[string]string{"broker.kinds": "kafka"}}
		}, []string{"broker.kinds"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := loadErr(t, c.src(t))
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

func TestInvalidValuesAreRefusedNamingTheKey(t *testing.T) {
	cases := []struct {
		name string
		key  string
		src  func(testing.TB) config.Sources
	}{
		{"a word where a number belongs, from the environment", "retry.max_attempts", env("MAILROOM_RETRY_MAX_ATTEMPTS=abc")},
		{"a word where a number belongs, from the file", "retry.max_attempts", yamlFile("retry:\n  max_attempts: abc\n")},
		{"a word where a number belongs, from a flag", "retry.max_attempts", flag("retry.max_attempts", "abc")},
		{"an empty number", "retry.max_attempts", env("MAILROOM_RETRY_MAX_ATTEMPTS=")},
		{"zero attempts", "retry.max_attempts", env("MAILROOM_RETRY_MAX_ATTEMPTS=0")},
		{"an unknown TLS mode", "smtp.tls", env("MAILROOM_SMTP_TLS=bogus")},
		{"an unknown TLS mode in the file", "smtp.tls", yamlFile("smtp:\n  tls: bogus\n")},
		{"an unknown broker kind", "broker.kind", env("MAILROOM_BROKER_KIND=rabbit")},
		{"an unknown broker kind from the flag", "broker.kind", flag("broker.kind", "rabbit")},
		{"an address without a port", "http.addr", env("MAILROOM_HTTP_ADDR=nonsense")},
		{"an address without a port in the file", "http.addr", yamlFile("http:\n  addr: nonsense\n")},
		{"a duration that is a word", "retry.initial_interval", env("MAILROOM_RETRY_INITIAL_INTERVAL=soon")},
		{"a duration without a unit", "retry.max_interval", env("MAILROOM_RETRY_MAX_INTERVAL=5")},
		{"a duration that is a word in the file", "smtp.timeout", yamlFile("smtp:\n  timeout: forever\n")},
		{"a negative duration", "outbox.poll_interval", env("MAILROOM_OUTBOX_POLL_INTERVAL=-1s")},
		{"a zero duration", "http.shutdown_timeout", env("MAILROOM_HTTP_SHUTDOWN_TIMEOUT=0s")},
		{"a max interval below the initial one", "retry.max_interval", env("MAILROOM_RETRY_INITIAL_INTERVAL=10s", "MAILROOM_RETRY_MAX_INTERVAL=1s")},
		{"a retry tier without a unit", "topics.retry_tiers", env("MAILROOM_TOPICS_RETRY_TIERS=5s,30")},
		{"a retry tier that is a word", "topics.retry_tiers", flag("topics.retry_tiers", "soon")},
		{"a negative retry tier", "topics.retry_tiers", yamlFile("topics:\n  retry_tiers: [-5s]\n")},
		{"no retry tiers", "topics.retry_tiers", yamlFile("topics:\n  retry_tiers: []\n")},
		{"a multiplier that is a word", "retry.multiplier", env("MAILROOM_RETRY_MULTIPLIER=double")},
		{"a multiplier below one", "retry.multiplier", env("MAILROOM_RETRY_MULTIPLIER=0.5")},
		{"a negative max age", "retry.max_age", env("MAILROOM_RETRY_MAX_AGE=-1h")},
		{"a jitter above one", "retry.jitter", env("MAILROOM_RETRY_JITTER=1.5")},
		{"a negative jitter", "retry.jitter", env("MAILROOM_RETRY_JITTER=-0.1")},
		{"a port out of range", "smtp.port", env("MAILROOM_SMTP_PORT=70000")},
		{"a broker without a port in a list", "kafka.brokers", env("MAILROOM_KAFKA_BROKERS=a:1,b")},
		{"an empty broker list", "kafka.brokers", env("MAILROOM_KAFKA_BROKERS=")},
		{"zero partitions", "topics.partitions", env("MAILROOM_TOPICS_PARTITIONS=0")},
		{"more partitions than MaxPartitions", "topics.partitions", env("MAILROOM_TOPICS_PARTITIONS=1025")},
		{"a topic name with a space", "topics.send", env("MAILROOM_TOPICS_SEND=email send")},
		{"an unknown transport", "delivery.transport", env("MAILROOM_DELIVERY_TRANSPORT=pigeon")},
		{"a concurrency of zero", "delivery.concurrency", env("MAILROOM_DELIVERY_CONCURRENCY=0")},
		{"a short API key", "auth.api_keys", env("MAILROOM_AUTH_API_KEYS=short")},
		{"a rate limit of zero", "auth.rate_limit", env("MAILROOM_AUTH_RATE_LIMIT=0")},
		{"a negative rate limit", "auth.rate_limit", env("MAILROOM_AUTH_RATE_LIMIT=-5")},
		{"a rate limit that is not a number", "auth.rate_limit", env("MAILROOM_AUTH_RATE_LIMIT=fast")},
		{"a burst of zero", "auth.rate_burst", env("MAILROOM_AUTH_RATE_BURST=0")},
		{"a body limit that is a word", "http.max_body_bytes", env("MAILROOM_HTTP_MAX_BODY_BYTES=lots")},
		{"an unknown log level", "log.level", env("MAILROOM_LOG_LEVEL=loud")},
		{"a list where a string belongs in the file", "smtp.host", yamlFile("smtp:\n  host: [a, b]\n")},
		{"a zero read timeout", "http.read_timeout", env("MAILROOM_HTTP_READ_TIMEOUT=0s")},
		{"a negative write timeout", "http.write_timeout", env("MAILROOM_HTTP_WRITE_TIMEOUT=-1s")},
		{"a zero idle timeout", "http.idle_timeout", env("MAILROOM_HTTP_IDLE_TIMEOUT=0s")},
		{"a header timeout longer than the read timeout", "http.read_header_timeout", env("MAILROOM_HTTP_READ_TIMEOUT=5s", "MAILROOM_HTTP_READ_HEADER_TIMEOUT=10s")},
		{"zero connections", "http.max_connections", env("MAILROOM_HTTP_MAX_CONNECTIONS=0")},
		{"a negative body rate", "http.min_body_rate", env("MAILROOM_HTTP_MIN_BODY_RATE=-1")},
		{"a body rate that is a word", "http.min_body_rate", env("MAILROOM_HTTP_MIN_BODY_RATE=slow")},
		{"a zero body rate grace", "http.min_body_rate_grace", env("MAILROOM_HTTP_MIN_BODY_RATE_GRACE=0s")},
		{"a negative attachment count", "limits.max_attachments", env("MAILROOM_LIMITS_MAX_ATTACHMENTS=-1")},
		{"an attachment size of zero", "limits.max_attachment_bytes", env("MAILROOM_LIMITS_MAX_ATTACHMENT_BYTES=0")},
		{"the old 1 MiB body limit beside the default attachment limit", "http.max_body_bytes", env("MAILROOM_HTTP_MAX_BODY_BYTES=1048576")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := loadErr(t, c.src(t))
			if !strings.Contains(err.Error(), c.key) {
				t.Errorf("error %q does not name the key %q", err, c.key)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans several lines; startup errors are one line", err)
			}
		})
	}
}

func env(kv ...string) func(testing.TB) config.Sources {
	return func(testing.TB) config.Sources { return config.Sources{Environ: kv} }
}

func flag(key, value string) func(testing.TB) config.Sources {
	return func(testing.TB) config.Sources { return config.Sources{Flags: map[string]string{key: value}} }
}

func yamlFile(body string) func(testing.TB) config.Sources {
	return func(tb testing.TB) config.Sources { return config.Sources{File: writeFile(tb, body)} }
}

// TestValuesMustHaveTheTypeOfTheirKey: nothing is rounded, reinterpreted or turned
// from one kind into another behind the user's back. The file and the environment
// are held to the same rules.
func TestValuesMustHaveTheTypeOfTheirKey(t *testing.T) {
	refused := []struct {
		name string
		key  string
		want string // also in the error: the variable, or what was wrong
		src  func(testing.TB) config.Sources
	}{
		{"a fraction for a whole number in the file", "topics.partitions", "3.7", yamlFile("topics:\n  partitions: 3.7\n")},
		{"a fraction for the concurrency in the file", "delivery.concurrency", "1.9", yamlFile("delivery:\n  concurrency: 1.9\n")},
		{"a bool for a port in the file", "smtp.port", "bool", yamlFile("smtp:\n  port: true\n")},
		{"a bool for a host in the file", "smtp.host", "bool", yamlFile("smtp:\n  host: true\n")},
		{"a bool for a list in the file", "kafka.brokers", "bool", yamlFile("kafka:\n  brokers: false\n")},
		{"a list inside a list in the file", "kafka.brokers", "list", yamlFile("kafka:\n  brokers: [[a:1]]\n")},
		{"hexadecimal from the environment", "topics.partitions", "MAILROOM_TOPICS_PARTITIONS", env("MAILROOM_TOPICS_PARTITIONS=0x10")},
		{"a fraction from the environment", "delivery.concurrency", "MAILROOM_DELIVERY_CONCURRENCY", env("MAILROOM_DELIVERY_CONCURRENCY=1.9")},
		{"a number too large", "http.max_body_bytes", "out of range", env("MAILROOM_HTTP_MAX_BODY_BYTES=99999999999999999999")},
		{"an empty port from the environment", "smtp.port", "MAILROOM_SMTP_PORT", env("MAILROOM_SMTP_PORT=")},
		{"an empty multiplier from the environment", "retry.multiplier", "MAILROOM_RETRY_MULTIPLIER", env("MAILROOM_RETRY_MULTIPLIER=")},
		{"an empty duration from the environment", "retry.initial_interval", "MAILROOM_RETRY_INITIAL_INTERVAL", env("MAILROOM_RETRY_INITIAL_INTERVAL=")},
		{"an exponent for a whole number from a flag", "smtp.port", "1e3", flag("smtp.port", "1e3")},
	}
	for _, c := range refused {
		t.Run(c.name+" is refused", func(t *testing.T) {
			err := loadErr(t, c.src(t))
			for _, w := range []string{c.key, c.want} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q spans several lines", err)
			}
		})
	}

	accepted := []struct {
		name  string
		src   func(testing.TB) config.Sources
		check func(*config.Config) (got, want any)
	}{
		{"a quoted whole number in the file", yamlFile("smtp:\n  port: \"2525\"\n"),
			func(c *config.Config) (any, any) { return c.SMTP.Port, 2525 }},
		{"an unquoted number for a password keeps its text", yamlFile("smtp:\n  password: 12345\n"),
			func(c *config.Config) (any, any) { return c.SMTP.Password.Reveal(), "12345" }},
		{"a whole number for the multiplier", yamlFile("retry:\n  multiplier: 3\n"),
			func(c *config.Config) (any, any) { return c.Retry.Multiplier, 3.0 }},
		{"comma-separated brokers in one string in the file", yamlFile("kafka:\n  brokers: \"a:1, b:2\"\n"),
			func(c *config.Config) (any, any) { return c.Kafka.Brokers, []string{"a:1", "b:2"} }},
		{"an empty string key from the environment", env("MAILROOM_SMTP_USERNAME="),
			func(c *config.Config) (any, any) { return c.SMTP.Username, "" }},
		{"a whole number with a sign from the environment", env("MAILROOM_SMTP_PORT=+2525"),
			func(c *config.Config) (any, any) { return c.SMTP.Port, 2525 }},
	}
	for _, c := range accepted {
		t.Run(c.name+" is accepted", func(t *testing.T) {
			cfg := mustLoad(t, c.src(t))
			if got, want := c.check(cfg); !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
}

// TestADurationNeedsAUnit: a bare number is refused the same way from the file and
// from the environment, rather than read as nanoseconds.
func TestADurationNeedsAUnit(t *testing.T) {
	cases := []struct {
		name string
		key  string
		src  func(testing.TB) config.Sources
	}{
		{"retry.initial_interval in the file", "retry.initial_interval", yamlFile("retry:\n  initial_interval: 5\n")},
		{"http.shutdown_timeout in the file", "http.shutdown_timeout", yamlFile("http:\n  shutdown_timeout: 30\n")},
		{"outbox.poll_interval in the file", "outbox.poll_interval", yamlFile("outbox:\n  poll_interval: 1\n")},
		{"a fraction in the file", "smtp.timeout", yamlFile("smtp:\n  timeout: 1.5\n")},
		{"zero in the file", "retry.max_interval", yamlFile("retry:\n  max_interval: 0\n")},
		{"a quoted number in the file", "retry.initial_interval", yamlFile("retry:\n  initial_interval: \"5\"\n")},
		{"retry.initial_interval from the environment", "retry.initial_interval", env("MAILROOM_RETRY_INITIAL_INTERVAL=5")},
		{"zero from the environment", "outbox.poll_interval", env("MAILROOM_OUTBOX_POLL_INTERVAL=0")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := loadErr(t, c.src(t))
			if want := c.key + ": "; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "has no unit; write a duration such as") {
				t.Errorf("error %q: want %q and that it has no unit", err, want)
			}
		})
	}
	cfg := mustLoad(t, config.Sources{File: writeFile(t, "retry:\n  initial_interval: 5s\n  max_interval: 90s\n")})
	if cfg.Retry.InitialInterval != 5*time.Second || cfg.Retry.MaxInterval != 90*time.Second {
		t.Errorf("durations with units = %v, %v; want 5s, 1m30s", cfg.Retry.InitialInterval, cfg.Retry.MaxInterval)
	}
}

// TestFloatKeysMustBeFinite: NaN and infinity parse as floats but are no setting; a
// NaN multiplier made every retry fire at once.
func TestFloatKeysMustBeFinite(t *testing.T) {
	cases := []struct {
		name string
		key  string
		src  func(testing.TB) config.Sources
	}{
		{"NaN multiplier from the environment", "retry.multiplier", env("MAILROOM_RETRY_MULTIPLIER=NaN")},
		{"+Inf multiplier from the environment", "retry.multiplier", env("MAILROOM_RETRY_MULTIPLIER=+Inf")},
		{"infinity multiplier from the environment", "retry.multiplier", env("MAILROOM_RETRY_MULTIPLIER=infinity")},
		{"an overflowing multiplier from the environment", "retry.multiplier", env("MAILROOM_RETRY_MULTIPLIER=1e999")},
		{".nan multiplier in the file", "retry.multiplier", yamlFile("retry:\n  multiplier: .nan\n")},
		{".inf multiplier in the file", "retry.multiplier", yamlFile("retry:\n  multiplier: .inf\n")},
		{"NaN rate limit from the environment", "auth.rate_limit", env("MAILROOM_AUTH_RATE_LIMIT=NaN")},
		{"Inf rate limit from the environment", "auth.rate_limit", env("MAILROOM_AUTH_RATE_LIMIT=Inf")},
		{".inf rate limit in the file", "auth.rate_limit", yamlFile("auth:\n  rate_limit: .inf\n")},
		{"-.Inf rate limit in the file", "auth.rate_limit", yamlFile("auth:\n  rate_limit: -.Inf\n")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := loadErr(t, c.src(t))
			if !strings.Contains(err.Error(), c.key+": ") || !strings.Contains(err.Error(), "not a finite number") {
				t.Errorf("error %q: want it to name %s and say it is not a finite number", err, c.key)
			}
		})
	}
	t.Run("Validate refuses a NaN multiplier set in code", func(t *testing.T) {
		cfg := mustLoad(t, config.Sources{})
		cfg.Retry.Multiplier = math.NaN()
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "retry.multiplier") {
			t.Errorf("Validate() = %v, want an error naming retry.multiplier", err)
		}
	})
}

// TestFileErrorsAreOneLineNamingTheFileAndLine: whatever is wrong with the file, the
// reason fits the contract's one line and says where to look.
func TestFileErrorsAreOneLineNamingTheFileAndLine(t *testing.T) {
	cases := []struct {
		name string
		body string
		want []string // every one must appear in the error, beside the file's path
	}{
		{"a key set twice", "http:\n  addr: 127.0.0.1:1\n  addr: 127.0.0.1:2\n", []string{"line 3", "http.addr", "twice", "line 2"}},
		{"a section set twice", "smtp:\n  host: a\nsmtp:\n  port: 25\n", []string{"line 3", "smtp", "twice"}},
		{"a list at the top level", "- a\n", []string{"line 1", "top level is a list", "not a mapping"}},
		{"a bare word at the top level", "hello\n", []string{"line 1", "top level is the value hello", "not a mapping"}},
		{"a syntax error", "http: [unclosed\n", []string{"line"}},
		{"a tab in the indentation", "http:\n\taddr: x\n", []string{"line"}},
		{"an unknown key", "http:\n  addr: 127.0.0.1:1\n  adress: x\n", []string{"line 3", "http.adress"}},
		{"a bad value", "retry:\n  max_attempts: 5\n  initial_interval: 5\n", []string{"line 3", "retry.initial_interval"}},
		{"a value given to a section", "http: 5\n", []string{"line 1", "http", "section"}},
		{"a value spanning lines", "http:\n  addr: |\n    a\n    b\n", []string{"http.addr"}},
		{"hexadecimal for a whole number", "topics:\n  partitions: 0x10\n", []string{"line 2", "topics.partitions", "0x10"}},
		{"nothing for a whole number", "smtp:\n  port:\n", []string{"line 2", "smtp.port", "no value"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := writeFile(t, c.body)
			err := loadErr(t, config.Sources{File: path})
			for _, w := range append(c.want, path) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if strings.ContainsAny(err.Error(), "\n\r") {
				t.Errorf("error %q spans several lines; startup errors are one line", err)
			}
		})
	}
}

// TestFileValuesKeepTheirText: a scalar for a string key is taken as written, not as
// a YAML library would read a number (012345 as octal, 1_000 as 1000).
func TestFileValuesKeepTheirText(t *testing.T) {
	for _, text := range []string{"012345", "1_000", "0x1F", "1e3", "2026-01-02"} {
		cfg := mustLoad(t, config.Sources{File: writeFile(t, "smtp:\n  password: "+text+"\n  username: "+text+"\n")})
		if cfg.SMTP.Password.Reveal() != text || cfg.SMTP.Username != text {
			t.Errorf("smtp.password, smtp.username: %s = %q, %q; want the text as written", text, cfg.SMTP.Password.Reveal(), cfg.SMTP.Username)
		}
	}
}

// TestAnEmptySectionSetsNoKeys: a section written with nothing under it, as one does
// while editing config.yaml, is the same as leaving it out.
func TestAnEmptySectionSetsNoKeys(t *testing.T) {
	defaults := mustLoad(t, config.Sources{})
	for _, body := range []string{
		"http:\n",
		"http: {}\n",
		"http: ~\n",
		"http:\nsmtp:\nretry:\n",
		"http:\n  # addr: 127.0.0.1:9\nsmtp: null\n",
	} {
		cfg := mustLoad(t, config.Sources{File: writeFile(t, body)})
		if !reflect.DeepEqual(cfg, defaults) {
			t.Errorf("file %q: got %+v, want the defaults", body, cfg)
		}
	}
	cfg := mustLoad(t, config.Sources{File: writeFile(t, "http:\nsmtp:\n  host: mail.example\n")})
	if cfg.SMTP.Host != "mail.example" || cfg.HTTP.Addr != defaults.HTTP.Addr {
		t.Errorf("an empty http: beside smtp.host: got smtp.host %q, http.addr %q", cfg.SMTP.Host, cfg.HTTP.Addr)
	}
	for _, body := range []string{"rabbit:\n", "rabbit: {}\n"} {
		err := loadErr(t, config.Sources{File: writeFile(t, body)})
		if !strings.Contains(err.Error(), `unknown config key "rabbit"`) {
			t.Errorf("file %q: error %q, want the unknown section named", body, err)
		}
	}
}

func TestUnreadableFilesAreRefusedNamingTheFile(t *testing.T) {
	cases := []struct {
		name string
		path func(testing.TB) string
	}{
		{"a file that does not exist", func(tb testing.TB) string { return filepath.Join(tb.TempDir(), "missing.yaml") }},
		{"a file that is not YAML", func(tb testing.TB) string { return writeFile(tb, "http: [unclosed\n") }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := c.path(t)
			err := loadErr(t, config.Sources{File: path})
			if !strings.Contains(err.Error(), filepath.Base(path)) {
				t.Errorf("error %q does not name the file %s", err, path)
			}
		})
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	const password = "hunter2-password-value"
	const apiKey = "sk-0123456789abcdef-api-key"
	cfg := mustLoad(t, config.Sources{Environ: []string{
		"MAILROOM_SMTP_PASSWORD=" + password,
		"MAILROOM_AUTH_API_KEYS=" + apiKey,
	}})
	if cfg.SMTP.Password.Reveal() != password || cfg.Auth.APIKeys[0].Reveal() != apiKey {
		t.Fatal("Reveal does not return the secrets that were set")
	}
	jsonBytes, err := json.Marshal(cfg)
	if err != nil {
		t.Fatalf("json.Marshal(cfg): %v", err)
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("config", "cfg", cfg, "password", cfg.SMTP.Password)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("config", "cfg", cfg, "password", cfg.SMTP.Password)

	// The formats are data, not constants, so that vet lets the odd verbs through.
	formatted := []struct {
		format string
		arg    any
	}{
		{"%v", cfg}, {"%+v", cfg}, {"%#v", cfg}, {"%s", cfg}, {"%v", *cfg}, {"%+v", *cfg},
		{"%+v", cfg.SMTP}, {"%#v", cfg.SMTP}, {"%v", cfg.Auth.APIKeys}, {"%#v", cfg.Auth.APIKeys},
		{"%s", cfg.SMTP.Password}, {"%q", cfg.SMTP.Password}, {"%x", cfg.SMTP.Password},
		{"%#v", cfg.SMTP.Password}, {"%d", cfg.SMTP.Password},
	}
	renderings := []struct {
		name string
		text string
	}{
		{"fmt.Sprint of the secret", fmt.Sprint(cfg.SMTP.Password)},
		{"json.Marshal of the config", string(jsonBytes)},
		{"slog JSON and text handlers", logged.String()},
	}
	for _, f := range formatted {
		renderings = append(renderings, struct {
			name string
			text string
		}{fmt.Sprintf("%s of a %T", f.format, f.arg), fmt.Sprintf(f.format, f.arg)})
	}
	for _, r := range renderings {
		t.Run(r.name, func(t *testing.T) {
			for _, secret := range []string{password, apiKey, fmt.Sprintf("%x", password)} {
				if strings.Contains(r.text, secret) {
					t.Errorf("%s shows the secret %q: %s", r.name, secret, r.text)
				}
			}
		})
	}
	if !strings.Contains(string(jsonBytes), "[redacted]") {
		t.Errorf("json.Marshal shows no redaction marker: %s", jsonBytes)
	}
	if s := fmt.Sprint(config.Secret("")); s != "" {
		t.Errorf("an empty secret prints as %q, want nothing", s)
	}
}

func TestErrorsNeverEchoSecretValues(t *testing.T) {
	const shortKey = "tooshort-secret" // 15 characters: refused, and must not be echoed
	err := loadErr(t, config.Sources{Environ: []string{"MAILROOM_AUTH_API_KEYS=" + shortKey}})
	if strings.Contains(err.Error(), shortKey) {
		t.Errorf("error %q shows the refused key", err)
	}
}

// repoConfigPath is the repository's root config.yaml, found from this file.
func repoConfigPath(tb testing.TB) string {
	tb.Helper()
	_, here, _, ok := runtime.Caller(0)
	if !ok {
		tb.Fatal("cannot locate the test file")
	}
	return filepath.Join(filepath.Dir(here), "..", "..", "config.yaml")
}

func TestRepositoryConfigYAMLDocumentsExactlyTheKnownKeys(t *testing.T) {
	path := repoConfigPath(t)
	k := koanf.New(".")
	if err := k.Load(file.Provider(path), yaml.Parser()); err != nil {
		t.Fatalf("parse %s: %v", path, err)
	}
	documented := k.Keys()
	var known []string
	for key := range config.Defaults() {
		known = append(known, key)
	}
	sort.Strings(documented)
	sort.Strings(known)
	for _, key := range known {
		if _, ok := slices.BinarySearch(documented, key); !ok {
			t.Errorf("config.yaml does not document the key %s", key)
		}
	}
	for _, key := range documented {
		if _, ok := slices.BinarySearch(known, key); !ok {
			t.Errorf("config.yaml documents %s, which is not a known key", key)
		}
	}
}

func TestRepositoryConfigYAMLHoldsTheTrueDefaults(t *testing.T) {
	fromFile := mustLoad(t, config.Sources{File: repoConfigPath(t)})
	builtIn := mustLoad(t, config.Sources{})
	if !reflect.DeepEqual(fromFile, builtIn) {
		t.Errorf("loading config.yaml differs from the built-in defaults:\n file %+v\n none %+v", fromFile, builtIn)
	}
}

// TestTheBodyLimitMustHoldTheLargestEmailTheAttachmentLimitsAllow: a body limit
// below base64 of limits.max_attachment_bytes plus 1 MiB would answer 413 to an
// email the limits promise to take; the error names both keys. With attachments
// off, the old floor of 1024 is all the body limit needs.
func TestTheBodyLimitMustHoldTheLargestEmailTheAttachmentLimitsAllow(t *testing.T) {
	err := loadErr(t, config.Sources{Environ: []string{"MAILROOM_LIMITS_MAX_ATTACHMENT_BYTES=3000000", "MAILROOM_HTTP_MAX_BODY_BYTES=5048575"}})
	for _, want := range []string{"http.max_body_bytes", "limits.max_attachment_bytes", "5048576"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	for _, environ := range [][]string{
		{"MAILROOM_LIMITS_MAX_ATTACHMENT_BYTES=3000000", "MAILROOM_HTTP_MAX_BODY_BYTES=5048576"},
		{"MAILROOM_LIMITS_MAX_ATTACHMENTS=0", "MAILROOM_HTTP_MAX_BODY_BYTES=1024"},
	} {
		cfg, err := config.Load(config.Sources{Environ: environ})
		if err != nil {
			t.Errorf("%v refused: %v", environ, err)
			continue
		}
		if got, need := cfg.HTTP.MaxBodyBytes, cfg.Limits.BodyBytesNeeded(); got < need {
			t.Errorf("%v: body limit %d below what the limits need, %d", environ, got, need)
		}
	}
	d, err := config.Load(config.Sources{})
	if err != nil {
		t.Fatal(err)
	}
	if d.HTTP.MaxBodyBytes != d.Limits.BodyBytesNeeded() {
		t.Errorf("default body limit %d, the default limits need %d", d.HTTP.MaxBodyBytes, d.Limits.BodyBytesNeeded())
	}
}

// TestPartitionsAboveThreeAreAcceptedUpToMaxPartitions: topics.partitions is the
// unit of scale on Kafka, so any count from 1 to config.MaxPartitions is taken as
// given (3 is only the default).
func TestPartitionsAboveThreeAreAcceptedUpToMaxPartitions(t *testing.T) {
	for _, n := range []int{1, 6, 48, config.MaxPartitions} {
		cfg := mustLoad(t, env(fmt.Sprintf("MAILROOM_TOPICS_PARTITIONS=%d", n))(t))
		if cfg.Topics.Partitions != n {
			t.Errorf("MAILROOM_TOPICS_PARTITIONS=%d loaded as %d", n, cfg.Topics.Partitions)
		}
	}
}

func TestRetryTierTopicsAreNamedByTheirLargestWholeUnitShortestFirst(t *testing.T) {
	cfg := mustLoad(t, config.Sources{Flags: map[string]string{"topics.retry_tiers": "1h,120s,5s,2m,1500ms"}})
	var got []string
	for _, d := range cfg.Topics.RetryTierDelays() {
		got = append(got, config.RetryTopic(cfg.Topics.Send, d))
	}
	want := []string{"email.send.retry.1500ms", "email.send.retry.5s", "email.send.retry.2m", "email.send.retry.1h"}
	if !slices.Equal(got, want) {
		t.Errorf("retry topics = %v, want %v (120s and 2m are one tier)", got, want)
	}
}
