package api_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"

	"github.com/kairoshq/kairos/api"
	"github.com/kairoshq/kairos/engine"
	"github.com/kairoshq/kairos/signals"
)

// stub stands for the engine and the bus in the example.
type stub struct{}

func (stub) Publish(context.Context, []signals.Event) error { return nil }
func (stub) Recommend(_ context.Context, r engine.RecRequest) (engine.RecResponse, error) {
	return engine.RecResponse{Visitor: r.Visitor, Strategy: engine.StrategyTrending,
		Items: []engine.Rec{{Item: "sku-42", Score: 1}}}, nil
}
func (stub) SimilarTo(context.Context, engine.SimilarRequest) ([]engine.Rec, error) {
	return nil, engine.ErrNotFound
}
func (stub) PutItem(_ context.Context, it engine.Item) (engine.Item, error) {
	return it, nil
}
func (stub) CreateItem(_ context.Context, it engine.Item) (engine.Item, error) {
	return it, nil
}
func (stub) Item(context.Context, string) (engine.Item, error) {
	return engine.Item{}, engine.ErrNotFound
}
func (stub) DeleteItem(context.Context, string) error { return engine.ErrNotFound }
func (stub) Items(context.Context, string, int) ([]engine.Item, error) {
	return nil, nil
}
func (stub) Ready(context.Context) error { return nil }

func ExampleNew() {
	dir, err := os.MkdirTemp("", "kairos-example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	keys, created, err := api.LoadOrCreateKeys(dir)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("created keys:", created, keys.Publishable[:3], keys.Secret[:3])

	srv, err := api.New(api.Config{
		SecretKeys:      []string{keys.Secret},
		PublishableKeys: []string{keys.Publishable},
		AllowedOrigins:  []string{"https://shop.example"},
	}, api.Deps{Publisher: stub{}, Recommender: stub{}, Catalog: stub{}, Checker: stub{}})
	if err != nil {
		fmt.Println(err)
		return
	}
	get := func(target, key string) {
		r := httptest.NewRequest("GET", target, nil)
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
		w := httptest.NewRecorder()
		srv.Handler().ServeHTTP(w, r)
		fmt.Println(w.Code, strings.TrimSpace(w.Body.String()))
	}
	get("/v1/recommendations?visitor=v-17&n=1", keys.Secret)
	get("/v1/recommendations?visitor=v-17&n=1", "")
	get("/v1/recommendations?visitor=v-17&n=1", keys.Publishable)
	get("/v1/recommendations?visitor=v-17&n=0", keys.Secret)
	// Output:
	// created keys: true pk_ sk_
	// 200 {"visitor":"v-17","strategy":"trending","items":[{"item":"sku-42","score":1}]}
	// 401 {"error":{"code":"unauthorized","message":"missing key: send the header Authorization: Bearer <key>"}}
	// 403 {"error":{"code":"forbidden","message":"this route needs the secret key; the publishable key may only send events"}}
	// 400 {"error":{"code":"invalid","message":"n: 0 is not in [1, 100]"}}
}
