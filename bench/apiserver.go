package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// apiServerSample is what the API server's own /metrics says at one moment:
// its CPU seconds and how many requests it has served, by verb and resource.
type apiServerSample struct {
	CPUSeconds float64
	Requests   map[string]float64 // "VERB resource[/subresource]" → count
}

// sampleAPIServer reads the API server's /metrics.
func sampleAPIServer(ctx context.Context, cfg *rest.Config) (apiServerSample, error) {
	s := apiServerSample{Requests: map[string]float64{}}
	body, err := getRaw(ctx, cfg, "/metrics", 30*time.Second)
	if err != nil {
		return s, fmt.Errorf("reading the API server's metrics: %w", err)
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "process_cpu_seconds_total "):
			s.CPUSeconds, _ = strconv.ParseFloat(strings.Fields(line)[1], 64)
		case strings.HasPrefix(line, "apiserver_request_total{"):
			labels, value, ok := splitSample(line)
			if !ok || labels["verb"] == "WATCH" {
				continue
			}
			res := labels["resource"]
			if sub := labels["subresource"]; sub != "" {
				res += "/" + sub
			}
			s.Requests[labels["verb"]+" "+res] += value
		}
	}
	return s, sc.Err()
}

// splitSample parses `name{a="b",...} value`.
func splitSample(line string) (map[string]string, float64, bool) {
	open, closing := strings.IndexByte(line, '{'), strings.LastIndexByte(line, '}')
	if open < 0 || closing < open {
		return nil, 0, false
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(line[closing+1:]), 64)
	if err != nil {
		return nil, 0, false
	}
	labels := map[string]string{}
	for _, kv := range strings.Split(line[open+1:closing], ",") {
		k, val, ok := strings.Cut(kv, "=")
		if ok {
			labels[k] = strings.Trim(val, `"`)
		}
	}
	return labels, v, true
}

// apiServerCost is the difference between two samples.
type apiServerCost struct {
	CPUSeconds float64            `json:"cpuSeconds"`
	Requests   map[string]float64 `json:"requests"`
}

func (a apiServerSample) until(b apiServerSample) apiServerCost {
	c := apiServerCost{CPUSeconds: b.CPUSeconds - a.CPUSeconds, Requests: map[string]float64{}}
	for k, v := range b.Requests {
		if d := v - a.Requests[k]; d > 0 {
			c.Requests[k] = d
		}
	}
	return c
}

// lines lists the requests per object, largest first, leaving out the
// benchmark's own reads (LIST/GET of Secrets by the tracker).
func (c apiServerCost) lines(n int) []string {
	keys := make([]string, 0, len(c.Requests))
	for k := range c.Requests {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return c.Requests[keys[i]] > c.Requests[keys[j]] })
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s %.0f (%.2f per object)", k, c.Requests[k], c.Requests[k]/float64(n)))
	}
	return out
}

// profileAPIServer records a CPU profile of the API server for d into file
// (the API server serves /debug/pprof with --profiling, its default).
func profileAPIServer(ctx context.Context, cfg *rest.Config, d time.Duration, file string) error {
	body, err := getRaw(ctx, cfg, "/debug/pprof/profile?seconds="+strconv.Itoa(int(d.Seconds())), d+30*time.Second)
	if err != nil {
		return fmt.Errorf("profiling the API server: %w", err)
	}
	return os.WriteFile(file, body, 0o644)
}

// getRaw GETs path from the API server with cfg's credentials.
func getRaw(ctx context.Context, cfg *rest.Config, path string, timeout time.Duration) ([]byte, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(cfg.Host, "/")+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return body, nil
}
