package config

// Defaults returns every configuration key with its built-in value. It is the single
// list of known keys: loading rejects any key it does not hold, and a test checks
// that config.yaml documents exactly these keys.
func Defaults() map[string]any {
	return map[string]any{
		"http.addr":                  "127.0.0.1:8080",
		"http.max_body_bytes":        1 << 20,
		"http.shutdown_timeout":      "30s",
		"db.path":                    "./data/mailroom.db",
		"db.min_free_bytes":          256 << 20,
		"broker.kind":                BrokerGoChannel,
		"kafka.brokers":              []string{"127.0.0.1:9092"},
		"kafka.consumer_group":       "email-send-group",
		"topics.send":                "email.send",
		"topics.dead_letter":         "email.send.dlt",
		"topics.events":              "email.events",
		"topics.partitions":          3,
		"topics.replication_factor":  1,
		"topics.min_insync_replicas": 0,
		"delivery.transport":         TransportCapture,
		"delivery.concurrency":       16,
		"smtp.host":                  "127.0.0.1",
		"smtp.port":                  1025,
		"smtp.username":              "",
		"smtp.password":              "",
		"smtp.tls":                   "starttls",
		"smtp.from":                  "Mailroom <mailroom@localhost>",
		"smtp.timeout":               "30s",
		"smtp.helo_name":             "",
		"retry.max_attempts":         25,
		"retry.initial_interval":     "1m",
		"retry.multiplier":           2.0,
		"retry.max_interval":         "2h",
		"retry.max_age":              "24h",
		"retry.jitter":               0.15,
		"auth.api_keys":              []string{},
		"auth.rate_limit":            50.0,
		"auth.rate_burst":            100,
		"auth.quota_emails_per_day":  100_000,
		"auth.quota_bytes_per_day":   1 << 30,
		"outbox.batch_size":          256,
		"outbox.poll_interval":       "1s",
		"log.level":                  "info",
		"log.format":                 "text",
	}
}
