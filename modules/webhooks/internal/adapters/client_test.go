package adapters_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mailroom/mailroom/modules/webhooks/internal/adapters"
	"github.com/mailroom/mailroom/modules/webhooks/internal/app"
)

func TestTheDialerRefusesInternalAddressesAtConnectTime(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:80", "127.8.9.10:443", "10.0.0.1:80", "10.255.1.2:8080", "172.16.0.1:80",
		"192.168.1.1:80", "169.254.169.254:80", "0.0.0.0:80", "100.64.0.1:80", "224.0.0.1:80",
		"[::1]:80", "[::]:80", "[fc00::1]:80", "[fd12:3456::1]:443", "[fe80::1]:80", "[ff02::1]:80", "[::ffff:127.0.0.1]:80",
		"[::ffff:10.0.0.1]:80"} {
		if err := adapters.RefuseForbidden("tcp", addr, nil); err == nil {
			t.Errorf("%s: let through, want refused", addr)
		}
	}
	for _, addr := range []string{"93.184.215.14:443", "8.8.8.8:53", "[2606:4700:4700::1111]:443", "172.32.0.1:80", "100.128.0.1:80"} {
		if err := adapters.RefuseForbidden("tcp", addr, nil); err != nil {
			t.Errorf("%s: %v, want let through", addr, err)
		}
	}
}

func TestAClientWithoutPrivateTargetsCannotReachALoopbackReceiver(t *testing.T) {
	var reached atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { reached.Store(true) }))
	defer srv.Close()
	req := app.Request{URL: srv.URL, Secret: "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", MessageID: "msg_1",
		Timestamp: time.Now(), Body: []byte(`{}`)}

	ans := adapters.NewClient(5*time.Second, false).Post(context.Background(), req)
	if ans.Err == nil || !strings.Contains(ans.Err.Error(), "internal address") || reached.Load() {
		t.Errorf("answer %+v (reached %v); want the connection refused before it is made", ans, reached.Load())
	}
	ans = adapters.NewClient(5*time.Second, true).Post(context.Background(), req)
	if ans.Err != nil || ans.StatusCode != http.StatusOK || !reached.Load() {
		t.Errorf("with private targets allowed: %+v; want 200", ans)
	}
}

func TestAnAnswerKeptIsCutAtARuneBoundaryAndValidUTF8(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"hello", 10, "hello"},
		{"hello", 3, "hel"},
		{"héllo", 2, "h"},
		{"日本語", 4, "日"},
		{"a\xffb", 10, "a\uFFFDb"},
	} {
		got := adapters.Clip([]byte(tc.in), tc.n)
		if got != tc.want || !utf8.ValidString(got) || len(got) > tc.n {
			t.Errorf("Clip(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestASignatureIsTheStandardWebhooksOne(t *testing.T) {
	// The example of the Standard Webhooks specification.
	at := time.Unix(1614265330, 0)
	sig, err := adapters.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", at,
		[]byte(`{"test": 2432232314}`))
	if err != nil || sig != "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=" {
		t.Errorf("Sign = %q, %v; want the specification's signature", sig, err)
	}
}
