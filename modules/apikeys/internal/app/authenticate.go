package app

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/mailroom/mailroom/modules/apikeys/internal/domain"
	"github.com/mailroom/mailroom/platform/auth"
)

// Why a key was refused. The HTTP layer answers both with 401.
var (
	ErrInvalidKey = errors.New("invalid API key")
	ErrRevokedKey = errors.New("API key revoked")
)

// Authenticate finds the principal of a presented key: a key from auth.api_keys
// (admin scope, any sender) or a stored key that is not revoked (its scope and the
// senders it may send as). It compares hashes in constant
// time and caches nothing, so a revocation takes effect on the next request, even
// one made from another process (`mailroom keys revoke`).
type Authenticate struct {
	Store Store
	// configKeys are the hashes of auth.api_keys, in order.
	configKeys [][sha256.Size]byte
}

// NewAuthenticate hashes the config keys once; the plain keys are not kept.
func NewAuthenticate(store Store, configKeys []string) Authenticate {
	a := Authenticate{Store: store}
	for _, k := range configKeys {
		a.configKeys = append(a.configKeys, domain.Hash(k))
	}
	return a
}

// ConfigKeyID is the key id under which the i-th (0-based) key of auth.api_keys acts;
// emails it sends record it as their owner.
func ConfigKeyID(i int) string { return fmt.Sprintf("config-%d", i+1) }

// ConfigKeys is how many keys auth.api_keys holds.
func (a Authenticate) ConfigKeys() int { return len(a.configKeys) }

// Handle returns the principal of secret, ErrInvalidKey, ErrRevokedKey, or another
// error when the store cannot answer.
func (a Authenticate) Handle(ctx context.Context, secret string) (auth.Principal, error) {
	sum := domain.Hash(secret)
	// Every config key is compared, match or not, and the first match is kept
	// without a branch, so the time taken says nothing about which one (or how much
	// of one) matched.
	match := -1
	for i, h := range a.configKeys {
		first := subtle.ConstantTimeCompare(sum[:], h[:]) & subtle.ConstantTimeEq(int32(match), -1)
		match = subtle.ConstantTimeSelect(first, i, match)
	}
	if match >= 0 {
		return auth.Principal{KeyID: ConfigKeyID(match), Name: fmt.Sprintf("auth.api_keys[%d]", match), Scope: auth.ScopeAdmin}, nil
	}
	prefix, ok := domain.PrefixOf(secret)
	if !ok {
		return auth.Principal{}, ErrInvalidKey
	}
	// The prefix finds the row without using the secret part of the key; the
	// comparison of the whole key is the constant-time one of the hashes.
	keys, err := a.Store.ByPrefix(ctx, prefix)
	if err != nil {
		return auth.Principal{}, fmt.Errorf("look up API key %s...: %w", prefix, err)
	}
	for _, k := range keys {
		if subtle.ConstantTimeCompare(sum[:], k.Hash[:]) != 1 {
			continue
		}
		if k.Revoked() {
			return auth.Principal{}, ErrRevokedKey
		}
		return auth.Principal{KeyID: k.ID, Name: k.Name, Scope: k.Scope, AllowedFrom: k.AllowedFrom}, nil
	}
	return auth.Principal{}, ErrInvalidKey
}
