package app_test

import (
	"context"
	"database/sql"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mailroom/mailroom/platform/httpserver"
	"github.com/mailroom/mailroom/platform/logging"
	"github.com/mailroom/mailroom/platform/sqlite"
)

// startFloorServer serves POST /api/emails doing the least a durable accept path
// must, and returns its base URL: the null server's Echo setup and strict decoding,
// then the email row and its outbox row (the request body as payload) on
// rawStore's tables, written through Mailroom's group commit (sqlite.DB.Tx, its
// pragmas and checkpointer), and 202 once they committed. No API key, validation,
// idempotency, tags, metrics or events: no accept path that keeps the design's
// promise (202 only once the email and its outbox row are durable in SQLite) does
// less, so floor/null bounds what x_null can reach on this machine.
func startFloorServer(b *testing.B) string {
	db, err := sqlite.Open(filepath.Join(b.TempDir(), "floor.db"))
	if err != nil {
		b.Fatalf("open floor db: %v", err)
	}
	b.Cleanup(func() { db.Close() })
	createRawTables(b, db.Write)

	e := httpserver.New(httpserver.Config{MaxBodyBytes: 1 << 20}, logging.Discard(), prometheus.NewRegistry())
	e.POST("/api/emails", func(c echo.Context) error {
		body, err := io.ReadAll(c.Request().Body)
		if err != nil {
			return err
		}
		var req nullRequest
		if err := httpserver.Unmarshal(body, &req); err != nil {
			return err
		}
		uid, err := uuid.NewV7()
		if err != nil {
			return err
		}
		id, now := uid.String(), time.Now().UnixMilli()
		err = db.Tx(context.WithoutCancel(c.Request().Context()), func(tx *sql.Tx) error {
			if _, err := tx.Exec(`INSERT INTO emails (id, status, from_addr, to_addrs, subject, text_body, created_at, updated_at)
				VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)`, id, req.From, strings.Join(req.To, ","), req.Subject, req.Text, now, now); err != nil {
				return err
			}
			_, err := tx.Exec(`INSERT INTO outbox (uuid, topic, payload, metadata, available_at, key_hash)
				VALUES (?, 'email.send', ?, '{}', ?, 0)`, id, body, now)
			return err
		})
		if err != nil {
			return err
		}
		c.Response().Header().Set(echo.HeaderLocation, "/api/emails/"+id)
		return c.JSON(http.StatusAccepted, map[string]string{"id": id, "status": "queued"})
	})
	return serveBench(b, e)
}
