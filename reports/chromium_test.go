package reports_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// A real headless Chromium driven over the DevTools protocol on a pipe
// (--remote-debugging-pipe: NUL-terminated JSON on file descriptors 3 and 4), which needs
// nothing beyond the standard library: no websocket, no driver.

// page is what the browser saw of one HTML file.
type page struct {
	// Text is document.body.innerText: what a reader sees.
	Text string
	// Requests are the URLs the page requested besides itself.
	Requests []string
	// Problems are console errors and warnings, uncaught exceptions and browser log errors
	// (a Content-Security-Policy violation among them).
	Problems []string
	PNG      []byte
	// PDFPages is how many A4 pages the page prints on.
	PDFPages int
}

type cdpMessage struct {
	ID        int                       `json:"id,omitempty"`
	Method    string                    `json:"method,omitempty"`
	Params    json.RawMessage           `json:"params,omitempty"`
	Result    json.RawMessage           `json:"result,omitempty"`
	Error     *struct{ Message string } `json:"error,omitempty"`
	SessionID string                    `json:"sessionId,omitempty"`
}

type cdp struct {
	w       *os.File
	msgs    chan cdpMessage
	next    int
	session string
	events  []cdpMessage
}

// call sends a command and waits for its answer, keeping the events that arrive meanwhile.
func (c *cdp) call(ctx context.Context, method string, params any, result any) error {
	c.next++
	raw, err := json.Marshal(params)
	if err != nil {
		return err
	}
	msg, err := json.Marshal(cdpMessage{ID: c.next, Method: method, Params: raw, SessionID: c.session})
	if err != nil {
		return err
	}
	if _, err := c.w.Write(append(msg, 0)); err != nil {
		return fmt.Errorf("send %s: %w", method, err)
	}
	for {
		m, err := c.receive(ctx)
		if err != nil {
			return fmt.Errorf("await %s: %w", method, err)
		}
		if m.ID != c.next {
			c.events = append(c.events, m)
			continue
		}
		if m.Error != nil {
			return fmt.Errorf("%s: %s", method, m.Error.Message)
		}
		if result == nil {
			return nil
		}
		return json.Unmarshal(m.Result, result)
	}
}

// await waits for an event, keeping the others.
func (c *cdp) await(ctx context.Context, method string) error {
	for {
		m, err := c.receive(ctx)
		if err != nil {
			return fmt.Errorf("await %s: %w", method, err)
		}
		c.events = append(c.events, m)
		if m.Method == method {
			return nil
		}
	}
}

func (c *cdp) receive(ctx context.Context) (cdpMessage, error) {
	select {
	case m, ok := <-c.msgs:
		if !ok {
			return m, errors.New("chromium closed the pipe")
		}
		return m, nil
	case <-ctx.Done():
		return cdpMessage{}, ctx.Err()
	}
}

// openInChromium loads the file in a fresh headless Chromium that cannot resolve any host,
// and reports what it saw.
func openInChromium(chromium, path string) page {
	GinkgoHelper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	toChrome, ours, err := os.Pipe()
	Expect(err).NotTo(HaveOccurred())
	theirs, fromChrome, err := os.Pipe()
	Expect(err).NotTo(HaveOccurred())
	args := []string{"--headless", "--disable-gpu", "--remote-debugging-pipe", "--no-first-run",
		"--no-default-browser-check", "--disable-extensions", "--disable-background-networking",
		"--host-resolver-rules=MAP * ~NOTFOUND", "--user-data-dir=" + GinkgoT().TempDir(), "about:blank"}
	if os.Geteuid() == 0 {
		args = append(args, "--no-sandbox") // Chromium refuses to run as root with its sandbox
	}
	cmd := exec.CommandContext(ctx, chromium, args...)
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	cmd.ExtraFiles = []*os.File{toChrome, fromChrome} // fds 3 and 4
	Expect(cmd.Start()).To(Succeed())
	Expect(toChrome.Close()).To(Succeed())
	Expect(fromChrome.Close()).To(Succeed())
	defer func() {
		_ = ours.Close()
		_ = cmd.Wait()
		_ = theirs.Close()
	}()
	c := &cdp{w: ours, msgs: make(chan cdpMessage, 256)}
	go func() {
		defer close(c.msgs)
		r := bufio.NewReader(theirs)
		for {
			line, err := r.ReadBytes(0)
			if err != nil {
				return
			}
			var m cdpMessage
			if json.Unmarshal(line[:len(line)-1], &m) == nil {
				c.msgs <- m
			}
		}
	}()
	must := func(err error) {
		GinkgoHelper()
		Expect(err).NotTo(HaveOccurred(), func() string { return "chromium stderr:\n" + stderr.String() })
	}

	var target struct{ TargetID string }
	must(c.call(ctx, "Target.createTarget", map[string]any{"url": "about:blank"}, &target))
	var attached struct{ SessionID string }
	must(c.call(ctx, "Target.attachToTarget", map[string]any{"targetId": target.TargetID, "flatten": true}, &attached))
	c.session = attached.SessionID
	for _, domain := range []string{"Page", "Runtime", "Log", "Network"} {
		must(c.call(ctx, domain+".enable", struct{}{}, nil))
	}
	must(c.call(ctx, "Emulation.setDeviceMetricsOverride", map[string]any{"width": 1100, "height": 900, "deviceScaleFactor": 1, "mobile": false}, nil))
	self := (&url.URL{Scheme: "file", Path: path}).String()
	must(c.call(ctx, "Page.navigate", map[string]any{"url": self}, nil))
	must(c.await(ctx, "Page.loadEventFired"))

	var p page
	var text struct{ Result struct{ Value string } }
	must(c.call(ctx, "Runtime.evaluate", map[string]any{"expression": "document.body.innerText", "returnByValue": true}, &text))
	p.Text = text.Result.Value
	var metrics struct {
		CSSContentSize struct{ Width, Height float64 }
	}
	must(c.call(ctx, "Page.getLayoutMetrics", struct{}{}, &metrics))
	var shot struct{ Data []byte }
	must(c.call(ctx, "Page.captureScreenshot", map[string]any{"format": "png", "captureBeyondViewport": true,
		"clip": map[string]any{"x": 0, "y": 0, "width": metrics.CSSContentSize.Width, "height": metrics.CSSContentSize.Height, "scale": 1}}, &shot))
	p.PNG = shot.Data
	var pdf struct{ Data string }
	must(c.call(ctx, "Page.printToPDF", map[string]any{"printBackground": true, "preferCSSPageSize": true}, &pdf))
	raw, err := base64.StdEncoding.DecodeString(pdf.Data)
	Expect(err).NotTo(HaveOccurred())
	p.PDFPages = len(pdfPage.FindAll(raw, -1))
	_ = c.call(ctx, "Browser.close", struct{}{}, nil) // the pipe may close before the answer

	for _, e := range c.events {
		switch e.Method {
		case "Network.requestWillBeSent":
			var ev struct{ Request struct{ URL string } }
			Expect(json.Unmarshal(e.Params, &ev)).To(Succeed())
			if ev.Request.URL != self {
				p.Requests = append(p.Requests, ev.Request.URL)
			}
		case "Runtime.consoleAPICalled":
			var ev struct {
				Type string
				Args []struct{ Value any }
			}
			Expect(json.Unmarshal(e.Params, &ev)).To(Succeed())
			if ev.Type == "error" || ev.Type == "warning" || ev.Type == "assert" {
				p.Problems = append(p.Problems, fmt.Sprintf("console %s: %v", ev.Type, ev.Args))
			}
		case "Runtime.exceptionThrown":
			p.Problems = append(p.Problems, "exception: "+string(e.Params))
		case "Log.entryAdded":
			var ev struct {
				Entry struct{ Level, Source, Text, URL string }
			}
			Expect(json.Unmarshal(e.Params, &ev)).To(Succeed())
			if ev.Entry.Level == "error" || ev.Entry.Level == "warning" {
				p.Problems = append(p.Problems, fmt.Sprintf("log %s (%s): %s %s", ev.Entry.Level, ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	}
	return p
}

// lockedBuffer collects chromium's stderr, written by os/exec's copying goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// pdfPage matches one page object of a PDF (not the /Pages tree).
var pdfPage = regexp.MustCompile(`/Type\s*/Page\b[^s]`)
