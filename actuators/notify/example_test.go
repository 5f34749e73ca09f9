package notify_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/ares-sre/ares/actuators/notify"
	"github.com/ares-sre/ares/engine"
)

func ExampleNotifier_Act() {
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		fmt.Println(r.Header.Get("Content-Type"), len(b) > 0)
	}))
	defer hook.Close()

	n := notify.New(hook.URL, 5*time.Second, nil)
	out, err := n.Act(context.Background(), engine.Action{
		Decision: engine.Decision{Action: engine.ActNotify, Service: "shop-cart", Reason: "error rate above 5%"},
		Verdict:  engine.VerdictAdmit,
	})
	fmt.Println(out.Result, err)

	out, err = notify.New("", 0, nil).Act(context.Background(), engine.Action{})
	fmt.Println(out.Result, out.Detail, err)
	// Output:
	// application/json true
	// ok <nil>
	// ok logged only: no webhook configured (set notify.webhook_url) <nil>
}
