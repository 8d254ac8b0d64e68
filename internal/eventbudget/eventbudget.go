// Package eventbudget bounds the informational Events keyferry emits.
//
// A first sync of thousands of objects would otherwise post one Normal
// "Created" Event per object: a write the API server pays for as much as
// the Secret itself, that tells nobody anything new. Normal Events draw
// from a shared token bucket; Warning Events (every failure) are always
// emitted.
package eventbudget

import (
	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
)

// Defaults: a burst large enough that a handful of objects always get
// their Events, and a steady rate that keeps a mass first sync cheap.
const (
	DefaultPerSecond = 10
	DefaultBurst     = 100
)

// Recorder emits Warning Events always and Normal Events while the budget
// lasts.
type Recorder struct {
	next       events.EventRecorder
	limiter    *rate.Limiter
	suppressed func()
}

var _ events.EventRecorder = (*Recorder)(nil)

// New wraps next with a budget of perSecond Normal Events per second and
// a burst of burst; perSecond < 0 means no budget. suppressed, if set, is
// called for each Normal Event left out.
func New(next events.EventRecorder, perSecond float64, burst int, suppressed func()) *Recorder {
	lim := rate.NewLimiter(rate.Limit(perSecond), burst)
	if perSecond < 0 {
		lim = rate.NewLimiter(rate.Inf, 0)
	}
	return &Recorder{next: next, limiter: lim, suppressed: suppressed}
}

// Eventf implements events.EventRecorder.
func (r *Recorder) Eventf(regarding, related runtime.Object, eventtype, reason, action, note string, args ...any) {
	if eventtype != corev1.EventTypeNormal || r.limiter.Allow() {
		r.next.Eventf(regarding, related, eventtype, reason, action, note, args...)
		return
	}
	if r.suppressed != nil {
		r.suppressed()
	}
}
