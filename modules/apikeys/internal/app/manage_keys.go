package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/mailroom/mailroom/modules/apikeys/internal/domain"
	"github.com/mailroom/mailroom/platform/apperr"
	"github.com/mailroom/mailroom/platform/auth"
)

// Created is a key just made: the stored record and, this one time, the key itself.
type Created struct {
	Key    domain.Key
	Secret string
}

// ManageKeys creates, lists and revokes stored keys, for the CLI and the admin API.
type ManageKeys struct {
	Store Store
	Now   func() time.Time
}

// Create makes a key with a name, a scope and the senders it may send as
// (allowedFrom: domains and addresses; none means any). The answer is the only
// place the key ever appears: only its hash and prefix are stored.
func (m ManageKeys) Create(ctx context.Context, name, scope string, allowedFrom []string) (Created, error) {
	if err := domain.CheckName(name); err != nil {
		return Created{}, apperr.Invalid("name", "%v", err)
	}
	sc, err := auth.ParseScope(scope)
	if err != nil {
		return Created{}, apperr.Invalid("scope", "must be %q or %q", auth.ScopeSend, auth.ScopeAdmin)
	}
	senders, err := domain.CheckAllowedFrom(allowedFrom)
	if err != nil {
		var bad domain.AllowedFromError
		if errors.As(err, &bad) {
			return Created{}, apperr.Invalid(fmt.Sprintf("allowed_from[%d]", bad.Index), "%v", err)
		}
		return Created{}, apperr.Invalid("allowed_from", "%v", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Created{}, fmt.Errorf("make a key id: %w", err)
	}
	secret, err := domain.NewSecret()
	if err != nil {
		return Created{}, err
	}
	prefix, _ := domain.PrefixOf(secret) // NewSecret makes the shape PrefixOf reads
	k := domain.Key{ID: id.String(), Name: name, Scope: sc, Prefix: prefix, Hash: domain.Hash(secret),
		CreatedAt: m.Now().UTC().Truncate(time.Millisecond), AllowedFrom: senders}
	if err := m.Store.Insert(ctx, k); err != nil {
		return Created{}, err
	}
	return Created{Key: k, Secret: secret}, nil
}

// List returns every stored key, revoked ones included, oldest first.
func (m ManageKeys) List(ctx context.Context) ([]domain.Key, error) { return m.Store.List(ctx) }

// Revoke revokes a key for good; revoking it again changes nothing.
func (m ManageKeys) Revoke(ctx context.Context, id string) (domain.Key, error) {
	return m.Store.Revoke(ctx, id)
}
