package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"
)

func runReplay(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	api := fs.String("api", envOr("HOOKLINE_API", "http://127.0.0.1:8080"), "gateway base URL ($HOOKLINE_API)")
	token := fs.String("token", os.Getenv("HOOKLINE_ADMIN_TOKEN"), "admin token ($HOOKLINE_ADMIN_TOKEN)")
	state := fs.String("state", "failed", "retry deliveries in this state: failed or cancelled (with --inbox: failed or unmapped)")
	connector := fs.String("connector", "", "only this connector")
	reference := fs.String("reference", "", "only this entity reference")
	rule := fs.String("rule", "", "only deliveries decided by this rule")
	since := fs.String("since", "", "only deliveries created since (RFC 3339 or a duration like 2h)")
	limit := fs.Int("limit", 0, "retry at most this many (0: all that match)")
	inbox := fs.Bool("inbox", false, "replay received webhooks (failed, or with --state unmapped) instead of retrying deliveries; the arguments are inbox ids")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: hookline replay [flags] [delivery-id ...]\n       hookline replay --inbox [flags] [inbox-id ...]\n\nRetries the named deliveries, or every delivery matching the filters, through\nthe admin API. Retried deliveries keep their ids, so receivers see the same\nIdempotency-Key. With --inbox, processes failed (or unmapped) webhooks again\nwith the config in force, after their mapping was fixed.")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return flagExit(err)
	}
	if *inbox && (*reference != "" || *rule != "" || *since != "") {
		fmt.Fprintln(stderr, "hookline replay: --inbox takes --state, --connector and --limit only")
		return 2
	}
	client := &http.Client{Timeout: 10 * time.Minute}
	post := func(path string) (map[string]any, error) {
		req, err := http.NewRequest(http.MethodPost, strings.TrimRight(*api, "/")+path, bytes.NewReader(nil))
		if err != nil {
			return nil, err
		}
		if *token != "" {
			req.Header.Set("Authorization", "Bearer "+*token)
		}
		resp, err := client.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return nil, fmt.Errorf("%s: answer is not JSON (%s)", path, resp.Status)
		}
		if resp.StatusCode >= 300 {
			return out, fmt.Errorf("%s: %s: %v", path, resp.Status, out["error"])
		}
		return out, nil
	}
	if fs.NArg() > 0 {
		failed := 0
		for _, id := range fs.Args() {
			path, done := "/api/v1/deliveries/"+url.PathEscape(id)+"/retry", "retried"
			if *inbox {
				path, done = "/api/v1/inbox/"+url.PathEscape(id)+"/replay", "replayed"
			}
			if _, err := post(path); err != nil {
				fmt.Fprintln(stderr, "hookline replay:", err)
				failed++
				continue
			}
			fmt.Fprintln(stdout, done, id)
		}
		if failed > 0 {
			return 1
		}
		return 0
	}
	if *inbox {
		n, err := replayInbox(post, *state, *connector, *limit)
		if err != nil {
			fmt.Fprintf(stderr, "hookline replay: %v (replayed %s before)\n", err, count(n, "webhook", "webhooks"))
			return 1
		}
		fmt.Fprintf(stdout, "replayed %s\n", count(n, "webhook", "webhooks"))
		return 0
	}
	filters := url.Values{}
	for k, v := range map[string]string{"state": *state, "connector": *connector, "reference": *reference, "rule": *rule, "since": *since} {
		if v != "" {
			filters.Set(k, v)
		}
	}
	n, more, err := retryDeliveries(post, filters, *limit)
	if err != nil {
		fmt.Fprintf(stderr, "hookline replay: %v (retried %s before)\n", err, count(n, "delivery", "deliveries"))
		return 1
	}
	if more {
		fmt.Fprintf(stdout, "retried %s; more match (--limit %d stopped it)\n", count(n, "delivery", "deliveries"), *limit)
		return 0
	}
	fmt.Fprintf(stdout, "retried %s\n", count(n, "delivery", "deliveries"))
	return 0
}

// maxRetryRequest is the most deliveries the gateway retries per request.
const maxRetryRequest = 100000

// retryDeliveries retries the deliveries matching filters, request after
// request, following the gateway's next_cursor while it answers more, at
// most limit of them (0: all), and returns how many it retried and whether
// limit stopped it with more matching.
func retryDeliveries(post func(string) (map[string]any, error), filters url.Values, limit int) (int, bool, error) {
	total, cursor := 0, ""
	for {
		q := url.Values{}
		for k, v := range filters {
			q[k] = v
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		if limit > 0 {
			q.Set("limit", fmt.Sprint(min(limit-total, maxRetryRequest)))
		}
		out, err := post("/api/v1/deliveries/retry?" + q.Encode())
		if err != nil {
			return total, false, err
		}
		n, _ := out["retried"].(float64)
		total += int(n)
		more, _ := out["more"].(bool)
		prev := cursor
		cursor, _ = out["next_cursor"].(string)
		switch {
		case !more || cursor == "":
			return total, false, nil
		case cursor == prev:
			return total, true, fmt.Errorf("the gateway answered the same next_cursor %q twice: stopping", cursor)
		case limit > 0 && total >= limit:
			return total, true, nil
		}
	}
}

// maxReplayPage is the most webhooks the gateway replays per request.
const maxReplayPage = 1000

// replayInbox replays the webhooks in state (of connector, when set)
// page by page, at most limit of them (0: all), and returns how many.
func replayInbox(post func(string) (map[string]any, error), state, connector string, limit int) (int, error) {
	total, after := 0, ""
	for {
		q := url.Values{"state": {state}}
		if connector != "" {
			q.Set("connector", connector)
		}
		if after != "" {
			q.Set("after", after)
		}
		page := maxReplayPage
		if limit > 0 {
			page = min(limit-total, page)
		}
		q.Set("limit", fmt.Sprint(page))
		out, err := post("/api/v1/inbox/replay?" + q.Encode())
		if err != nil {
			return total, err
		}
		n, _ := out["replayed"].(float64)
		total += int(n)
		after, _ = out["next_cursor"].(string)
		if after == "" || limit > 0 && total >= limit {
			return total, nil
		}
	}
}

// count says "1 delivery", "2 deliveries".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprint(n, " ", many)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
