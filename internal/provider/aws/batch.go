package aws

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"

	"github.com/go-logr/logr"

	"github.com/keyferry/keyferry/internal/provider"
)

// batcher fetches values by id, many per call where it can. AWS bills per
// call, so N values cost ceil(N/size) calls instead of N.
type batcher struct {
	// size is the most ids one batch call takes.
	size int
	// call names the batch call in logs and the permission users may grant.
	call string
	// batch fetches up to size ids in one call. It returns the values and
	// errors of the ids it could tell apart; ids in neither map are fetched
	// one by one. err is an error of the call as a whole.
	batch func(ctx context.Context, ids []string) (values map[string]provider.Value, errs map[string]error, err error)
	// single fetches one id.
	single func(ctx context.Context, id string) (provider.Value, error)
	log    logr.Logger
	// denied is set once the batch call has been refused: the store's
	// credentials may read secrets one by one only (ESO's documented IAM
	// policies do not grant the batch calls). It is not asked again.
	denied atomic.Bool
}

// fetch returns the value or error of every id in ids (which must be
// distinct).
func (b *batcher) fetch(ctx context.Context, ids []string) (map[string]provider.Value, map[string]error) {
	values := make(map[string]provider.Value, len(ids))
	errs := map[string]error{}
	for chunk := range slices.Chunk(ids, b.size) {
		rest := chunk
		if !b.denied.Load() {
			rest = b.fetchChunk(ctx, chunk, values, errs)
		}
		for _, id := range rest {
			v, err := b.single(ctx, id)
			if err != nil {
				errs[id] = err
				continue
			}
			values[id] = v
		}
	}
	return values, errs
}

// fetchChunk fetches chunk with one batch call and returns the ids left to
// fetch one by one.
func (b *batcher) fetchChunk(ctx context.Context, chunk []string, values map[string]provider.Value, errs map[string]error) []string {
	got, failed, err := b.batch(ctx, chunk)
	switch {
	case err == nil:
	case isCredentialsError(err):
		// No call was made: the store's credentials could not be obtained.
		for _, id := range chunk {
			errs[id] = err
		}
		return nil
	case errors.Is(err, provider.ErrForbidden):
		if !b.denied.Swap(true) {
			b.log.Info("batch calls are not allowed; fetching values one by one (grant "+b.call+" to save API calls)", "error", err.Error())
		}
		return chunk
	case errors.Is(err, provider.ErrNotFound):
		// One id without a current value can fail the whole call (moto
		// does this); one-by-one calls tell which.
		return chunk
	default:
		// Unreachable, unauthenticated, throttled: single calls would fail
		// the same way.
		for _, id := range chunk {
			errs[id] = err
		}
		return nil
	}
	var rest []string
	for _, id := range chunk {
		if v, ok := got[id]; ok {
			values[id] = v
		} else if e, ok := failed[id]; ok {
			errs[id] = e
		} else {
			rest = append(rest, id)
		}
	}
	return rest
}

// getRefs reads refs for a BatchGetter: the refs batchID gives an id are
// fetched by b (each id once, however many refs share it); the others with
// single, one by one.
func getRefs(ctx context.Context, refs []provider.Ref, b *batcher, batchID func(provider.Ref) (string, bool),
	single func(context.Context, provider.Ref) (provider.Value, error)) (map[provider.Ref]provider.Value, map[provider.Ref]error) {
	values := make(map[provider.Ref]provider.Value, len(refs))
	errs := map[provider.Ref]error{}
	byID := map[string][]provider.Ref{}
	var ids []string
	others := map[provider.Ref]struct{}{}
	for _, ref := range refs {
		id, ok := batchID(ref)
		if !ok {
			others[ref] = struct{}{}
			continue
		}
		if _, seen := byID[id]; !seen {
			ids = append(ids, id)
		}
		byID[id] = append(byID[id], ref)
	}
	got, failed := b.fetch(ctx, ids)
	for id, v := range got {
		for _, ref := range byID[id] {
			values[ref] = v
		}
	}
	for id, err := range failed {
		for _, ref := range byID[id] {
			errs[ref] = err
		}
	}
	for ref := range others {
		v, err := single(ctx, ref)
		if err != nil {
			errs[ref] = err
			continue
		}
		values[ref] = v
	}
	return values, errs
}
