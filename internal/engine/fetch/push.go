// This file is the write side of the fetch layer (PushSecret). A push uses
// the same client as every read of the store: built through the same
// admission rules (provider.Admit: which identities a store may use, no
// reference out of its namespace), rate-limited and backed off with the
// reads, and it invalidates the cached values of the key it wrote, so the
// ExternalSecrets reading that key see the new value at once.

package fetch

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyferry/keyferry/internal/provider"
)

// Inspect reads the state of a remote secret through the store's client.
func (l *Layer) Inspect(ctx context.Context, req Request, ref provider.PushRef) (provider.RemoteState, error) {
	var st provider.RemoteState
	err := l.withPusher(ctx, req, ref, false, func(p provider.Pusher) error {
		var err error
		st, err = p.Inspect(ctx, ref)
		return err
	})
	return st, err
}

// Push writes one value through the store's client (provider.Pusher.Push).
func (l *Layer) Push(ctx context.Context, req Request, ref provider.PushRef, v provider.PushValue, state provider.RemoteState) (bool, error) {
	var wrote bool
	err := l.withPusher(ctx, req, ref, true, func(p provider.Pusher) error {
		if err := checkMetadata(p, v.Metadata); err != nil {
			return err
		}
		var err error
		wrote, err = p.Push(ctx, ref, v, state)
		return err
	})
	return wrote, err
}

// checkMetadata refuses a push's metadata that the pusher cannot honour:
// every metadata of a pusher that takes none (provider.MetadataPusher).
func checkMetadata(p provider.Pusher, raw []byte) error {
	if len(raw) == 0 {
		return nil
	}
	mp, ok := p.(provider.MetadataPusher)
	if !ok {
		return fmt.Errorf("%w: this provider takes no metadata (data[].metadata, dataTo[].metadata); remove it", provider.ErrInvalidPush)
	}
	return mp.CheckPushMetadata(raw)
}

// DeleteRemote deletes what keyferry pushed at ref (provider.Pusher.Delete).
func (l *Layer) DeleteRemote(ctx context.Context, req Request, ref provider.PushRef, state provider.RemoteState) error {
	return l.withPusher(ctx, req, ref, true, func(p provider.Pusher) error {
		return p.Delete(ctx, ref, state)
	})
}

// withPusher runs call on the store's client, admitted through its rate
// limiter and recorded in its backoff. A refusal of the push itself (a
// conflict, an unmanaged remote, an invalid push) says nothing about the
// store's health and does not back it off. writes invalidates the cached
// values of ref's key (in every spelling the provider reads it by,
// provider.PushReadKeys).
func (l *Layer) withPusher(ctx context.Context, req Request, ref provider.PushRef, writes bool, call func(provider.Pusher) error) error {
	s, err := l.backendFor(ctx, req)
	if err != nil {
		return err
	}
	p, ok := s.client.(provider.Pusher)
	if !ok {
		return fmt.Errorf("%w: the %s provider cannot push (store %s)", provider.ErrNotSupported, s.provider, s.key)
	}
	if err := l.admit(ctx, s); err != nil {
		l.waitForRecovery(s, req, ref)
		return err
	}
	err = call(p)
	if isPushRefusal(err) {
		l.record(s, nil)
	} else {
		l.record(s, err)
	}
	if isStoreFailure(err) {
		l.waitForRecovery(s, req, ref)
	}
	if writes {
		keys := []string{ref.RemoteKey}
		if rk, ok := p.(provider.PushReadKeys); ok {
			keys = append(keys, rk.ReadKeys(ref)...)
		}
		s.mu.Lock()
		subs := s.invalidate(keys)
		s.mu.Unlock()
		if len(subs) > 0 {
			l.opts.OnChange(subs)
		}
	}
	return err
}

func isPushRefusal(err error) bool {
	return errors.Is(err, provider.ErrConflict) || errors.Is(err, provider.ErrNotManaged) || errors.Is(err, provider.ErrInvalidPush)
}

// waitForRecovery records the pusher as waiting for the failing store s, as
// a failed read does, so it is told (OnChange) when a probe of the store
// answers; the probe reads ref's remote key (a missing key is an answer).
func (l *Layer) waitForRecovery(s *backend, req Request, ref provider.PushRef) {
	target := provider.Ref{Key: ref.RemoteKey}
	l.noteFailed(s, refKey(target), probeTarget{ref: &target})
	if req.Subscriber == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failures > 0 {
		l.addWaiter(s, req.Subscriber, 0)
	}
}
