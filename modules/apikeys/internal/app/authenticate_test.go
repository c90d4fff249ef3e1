package app

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/mailroom/mailroom/modules/apikeys/internal/domain"
	"github.com/mailroom/mailroom/platform/auth"
)

// memStore is a Store in memory, for the rules that need no database.
type memStore struct {
	keys []domain.Key
	err  error
}

func (s *memStore) Insert(_ context.Context, k domain.Key) error {
	s.keys = append(s.keys, k)
	return s.err
}
func (s *memStore) ByPrefix(_ context.Context, p string) ([]domain.Key, error) {
	var out []domain.Key
	for _, k := range s.keys {
		if k.Prefix == p {
			out = append(out, k)
		}
	}
	return out, s.err
}
func (s *memStore) List(context.Context) ([]domain.Key, error) { return s.keys, s.err }
func (s *memStore) Revoke(_ context.Context, id string) (domain.Key, error) {
	for i := range s.keys {
		if s.keys[i].ID == id {
			now := time.Now()
			s.keys[i].RevokedAt = &now
			return s.keys[i], nil
		}
	}
	return domain.Key{}, errors.New("not found")
}
func (s *memStore) CountUsable(context.Context) (int, error) { return len(s.keys), s.err }

func TestAuthenticateRecognisesConfigAndStoredKeys(t *testing.T) {
	ctx := context.Background()
	store := &memStore{}
	manage := ManageKeys{Store: store, Now: time.Now}
	sender, err := manage.Create(ctx, "sender", "send", nil)
	if err != nil {
		t.Fatal(err)
	}
	restricted, err := manage.Create(ctx, "restricted", "send", []string{"Example.COM", "team@other.example"})
	if err != nil {
		t.Fatal(err)
	}
	revoked, err := manage.Create(ctx, "revoked", "admin", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := manage.Revoke(ctx, revoked.Key.ID); err != nil {
		t.Fatal(err)
	}
	// A stored key sharing the sender's prefix but not its hash: only the hash counts.
	twin := sender.Key
	twin.ID, twin.Hash = "twin", domain.Hash("something else")
	store.keys = append([]domain.Key{twin}, store.keys...)

	a := NewAuthenticate(store, []string{"first-config-key-000000", "second-config-key-00000"})
	cases := []struct {
		name   string
		secret string
		want   auth.Principal
		err    error
	}{
		{"the first config key is admin config-1", "first-config-key-000000", auth.Principal{KeyID: "config-1", Name: "auth.api_keys[0]", Scope: auth.ScopeAdmin}, nil},
		{"the second config key is admin config-2", "second-config-key-00000", auth.Principal{KeyID: "config-2", Name: "auth.api_keys[1]", Scope: auth.ScopeAdmin}, nil},
		{"a stored key has its own id and scope", sender.Secret, auth.Principal{KeyID: sender.Key.ID, Name: "sender", Scope: auth.ScopeSend}, nil},
		{"a restricted key carries its senders, in lower case", restricted.Secret, auth.Principal{KeyID: restricted.Key.ID, Name: "restricted",
			Scope: auth.ScopeSend, AllowedFrom: []string{"example.com", "team@other.example"}}, nil},
		{"a revoked key is refused as revoked", revoked.Secret, auth.Principal{}, ErrRevokedKey},
		{"a key with a stored prefix but another secret is invalid", otherSecret(sender.Secret), auth.Principal{}, ErrInvalidKey},
		{"a prefix of a config key is invalid", "first-config-key", auth.Principal{}, ErrInvalidKey},
		{"an empty key is invalid", "", auth.Principal{}, ErrInvalidKey},
	}
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Handle(ctx, tt.secret)
			if !errors.Is(err, tt.err) || !reflect.DeepEqual(p, tt.want) {
				t.Errorf("Handle = %+v, %v; want %+v, %v", p, err, tt.want, tt.err)
			}
		})
	}

	t.Run("a store failure is neither invalid nor revoked", func(t *testing.T) {
		store.err = errors.New("disk on fire")
		_, err := a.Handle(ctx, sender.Secret)
		if err == nil || errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrRevokedKey) {
			t.Errorf("Handle with a failing store = %v, want another error", err)
		}
	})
}

// otherSecret changes the last character of a key, keeping its shape and prefix.
func otherSecret(s string) string {
	last := byte('x')
	if s[len(s)-1] == last {
		last = 'y'
	}
	return s[:len(s)-1] + string(last)
}
