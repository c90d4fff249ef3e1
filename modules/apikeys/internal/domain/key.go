// Package domain holds what an API key is to the apikeys module: how a key is made,
// how it is recognised without being stored, and the rules its name must pass.
package domain

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mailroom/mailroom/platform/auth"
)

// Shape of a key: Marker, then the base64url of SecretBytes random bytes. The marker
// makes a leaked key easy to recognise (and to grep for); the random part makes it
// unguessable.
const (
	Marker      = "mr_"
	SecretBytes = 32
	// PrefixLen is how many characters of a key (marker included) are stored in
	// clear and shown: enough to tell keys apart, far too few to guess the rest.
	PrefixLen = len(Marker) + 8
	// MaxNameLen bounds a key's name.
	MaxNameLen = 100
)

// keyLen is the length of every key Mailroom makes.
var keyLen = len(Marker) + base64.RawURLEncoding.EncodedLen(SecretBytes)

// Key is a stored API key: everything but the key itself.
type Key struct {
	ID        string
	Name      string
	Scope     auth.Scope
	Prefix    string
	Hash      [sha256.Size]byte
	CreatedAt time.Time
	RevokedAt *time.Time
	// AllowedFrom is the senders the key may send as (see CheckAllowedFrom); nil
	// means any.
	AllowedFrom []string
}

// Revoked reports whether the key was revoked.
func (k Key) Revoked() bool { return k.RevokedAt != nil }

// NewSecret makes a new random key. Only its Hash and Prefix are ever stored.
func NewSecret() (string, error) {
	b := make([]byte, SecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("read random bytes for a key: %w", err)
	}
	return Marker + base64.RawURLEncoding.EncodeToString(b), nil
}

// Hash is the stored form of a key. SHA-256 without salt or stretching is enough
// because every key Mailroom makes holds 256 random bits: there is no dictionary to
// try. Config keys are hashed the same way so that all comparisons are of hashes.
func Hash(secret string) [sha256.Size]byte { return sha256.Sum256([]byte(secret)) }

// PrefixOf returns the stored prefix of a key Mailroom made, or ok=false when the
// string does not have the shape of one (it cannot be a stored key then).
func PrefixOf(secret string) (prefix string, ok bool) {
	if len(secret) != keyLen || !strings.HasPrefix(secret, Marker) {
		return "", false
	}
	return secret[:PrefixLen], true
}

// CheckName validates a key's name: 1 to MaxNameLen printable characters.
func CheckName(name string) error {
	if strings.TrimSpace(name) == "" {
		return fmt.Errorf("must not be empty")
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameLen {
		return fmt.Errorf("must be at most %d characters of valid UTF-8", MaxNameLen)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("must hold printable characters only")
		}
	}
	return nil
}
