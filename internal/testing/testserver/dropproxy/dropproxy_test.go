package dropproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// get fetches url with c and returns the body, or the
// error of the request or of reading the body.
func get(t *testing.T, c *http.Client, url string) (string, error) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func newClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

const answer = "a whole answer, longer than five bytes"

func target(t *testing.T) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, answer)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestProxyCutsTheFirstConnectionsAfterTheHeaders(t *testing.T) {
	srv := target(t)
	p := StartProxy(t, strings.TrimPrefix(srv.URL, "http://"), ProxyOptions{CutFirst: 1})
	c := newClient(t)
	if body, err := get(t, c, "http://"+p.Addr()); err == nil {
		t.Fatalf("the first answer arrived whole: %q", body)
	}
	if body, err := get(t, c, "http://"+p.Addr()); err != nil || body != answer {
		t.Fatalf("second answer: %q, %v; want it whole", body, err)
	}
	if n := p.Conns(); n != 2 {
		t.Fatalf("%d connections, want 2", n)
	}
}

func TestProxyCutsTheNextAnswerWhenArmed(t *testing.T) {
	srv := target(t)
	p := StartProxy(t, strings.TrimPrefix(srv.URL, "http://"), ProxyOptions{})
	c := newClient(t)
	if body, err := get(t, c, "http://"+p.Addr()); err != nil || body != answer {
		t.Fatalf("unarmed: %q, %v; want the answer whole", body, err)
	}
	p.CutNext()
	if body, err := get(t, c, "http://"+p.Addr()); err == nil {
		t.Fatalf("armed: the answer arrived whole: %q", body)
	}
	if p.Armed() {
		t.Fatal("still armed after cutting an answer")
	}
}

func TestServerDropsTheFirstRequests(t *testing.T) {
	s := StartServer(t, ServerOptions{Drop: 1, Status: http.StatusTeapot, Header: "X-Test: yes\r\n", Body: answer})
	c := newClient(t)
	if body, err := get(t, c, s.URL()); err == nil {
		t.Fatalf("the first answer arrived whole: %q", body)
	}
	resp, err := c.Get(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil || string(b) != answer || resp.StatusCode != http.StatusTeapot || resp.Header.Get("X-Test") != "yes" {
		t.Fatalf("second answer: %d %v %q, %v", resp.StatusCode, resp.Header, b, err)
	}
	if n := s.Attempts(); n != 2 {
		t.Fatalf("%d requests, want 2", n)
	}
}
