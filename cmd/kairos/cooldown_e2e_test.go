package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kairoshq/kairos/engine/promo"
)

// TestRuleCooldownAcrossSignInEmbedded and ...RabbitRedis: a rule's
// cooldown holds for the person: a device that fired it and then signs
// in, or another device of the user, gets no second promotion within the
// cooldown.
func TestRuleCooldownAcrossSignInEmbedded(t *testing.T) { cooldownAcrossSignIn(t, startServer(t)) }

// TestRuleCooldownAcrossSignInRabbitRedis: see the embedded test.
func TestRuleCooldownAcrossSignInRabbitRedis(t *testing.T) { cooldownAcrossSignIn(t, startServices(t)) }

func cooldownAcrossSignIn(t *testing.T, srv *testServer) {
	srv.secretJSON(t, "POST", "/v1/offers", `{"id":"stay","title":"Stay","slot":"exit"}`, http.StatusCreated)
	srv.secretJSON(t, "POST", "/v1/rules", `{"id":"leaving","cooldown":"1h","when":{"exit":{}},"then":{"offer":"stay"}}`, http.StatusCreated)
	promotions := func(v string) int { return promotionsLogged(t, srv, v) }
	exit := func(id, visitor string) {
		t.Helper()
		srv.secretJSON(t, "POST", "/v1/events?wait=10s", `[{"id":"`+id+`","type":"exit","visitor":"`+visitor+`"}]`, http.StatusOK)
	}
	exit("exit-1", "phone")
	waitFor(t, 10*time.Second, "the first promotion", func() bool { return promotions("phone") == 1 })
	srv.secretJSON(t, "POST", "/v1/identify?wait=10s", `{"anonymous_id":"phone","user_id":"pat"}`, http.StatusOK)
	srv.secretJSON(t, "POST", "/v1/identify?wait=10s", `{"anonymous_id":"laptop","user_id":"pat"}`, http.StatusOK)
	exit("exit-2", "phone")
	exit("exit-3", "laptop")
	waitFor(t, 10*time.Second, "the rule's skips within the cooldown", func() bool {
		return strings.Contains(scrapeMetrics(t, srv), `kairos_promo_rule_skips_total{reason="cooldown"} 2`)
	})
	if p, l := promotions("phone"), promotions("laptop"); p != 1 || l != 0 {
		t.Errorf("promotions within the cooldown: phone %d, laptop %d; want 1 and 0", p, l)
	}
}

// promotionsLogged is the number of promotions in visitor's log (up to
// 10), read from the server's store.
func promotionsLogged(t *testing.T, srv *testServer, visitor string) int {
	t.Helper()
	got, err := promo.NewStore(srv.app.store).Promotions(t.Context(), visitor, 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	return len(got)
}
