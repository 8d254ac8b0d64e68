package restart

import (
	"slices"
	"testing"
	"time"
)

func TestDebouncer(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 19, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	const w = 2 * time.Second

	t.Run("one change is due a window later", func(t *testing.T) {
		d := NewDebouncer[string](w, 0)
		if wait := d.Add("app", []string{"db"}, t0); wait != w {
			t.Fatalf("Add wait = %v; want %v", wait, w)
		}
		if _, wait, ok := d.Take("app", at(time.Second)); ok || wait != time.Second {
			t.Fatalf("Take before due = ok %v wait %v; want a second to wait", ok, wait)
		}
		p, _, ok := d.Take("app", at(w))
		if !ok || !slices.Equal(p.Secrets, []string{"db"}) {
			t.Fatalf("Take when due = %+v ok %v", p, ok)
		}
		if _, wait, ok := d.Take("app", at(w)); ok || wait != 0 {
			t.Fatal("a taken workload is still pending")
		}
	})
	t.Run("many Secrets of one rotation restart once", func(t *testing.T) {
		d := NewDebouncer[string](w, 0)
		for i, s := range []string{"c", "a", "b", "a"} {
			d.Add("app", []string{s}, at(time.Duration(i)*500*time.Millisecond))
		}
		if _, _, ok := d.Take("app", at(3*time.Second)); ok {
			t.Fatal("due before a window passed after the last change")
		}
		p, _, ok := d.Take("app", at(3500*time.Millisecond))
		if !ok || !slices.Equal(p.Secrets, []string{"a", "b", "c"}) || !p.First.Equal(t0) {
			t.Fatalf("Take = %+v ok %v; want a, b, c since t0", p, ok)
		}
		if d.Len() != 0 {
			t.Fatal("still pending after Take")
		}
	})
	t.Run("a stream of changes is due after MaxWait", func(t *testing.T) {
		d := NewDebouncer[string](w, 5*time.Second)
		for i := range 10 {
			d.Add("app", []string{"db"}, at(time.Duration(i)*time.Second))
		}
		if _, _, ok := d.Take("app", at(5*time.Second)); !ok {
			t.Fatal("not due MaxWait after the first change")
		}
	})
	t.Run("workloads wait apart", func(t *testing.T) {
		d := NewDebouncer[string](w, 0)
		d.Add("a", []string{"db"}, t0)
		d.Add("b", []string{"db"}, at(time.Second))
		if _, _, ok := d.Take("a", at(w)); !ok {
			t.Fatal("a is not due")
		}
		if _, _, ok := d.Take("b", at(w)); ok {
			t.Fatal("b is due with a")
		}
	})
	t.Run("defaults", func(t *testing.T) {
		d := NewDebouncer[string](0, 0)
		if d.window != DefaultWindow || d.maxWait != 5*DefaultWindow {
			t.Fatalf("window %v maxWait %v", d.window, d.maxWait)
		}
	})
}
