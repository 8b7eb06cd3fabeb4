// Command client is the README's example of the Go client (package
// github.com/kairoshq/kairos/api/client): it fills a small catalog, sends
// a visitor's events, links the visitor to a user, asks for
// recommendations and shows an error. cmd/kairos's TestReadmeClientExample
// runs it against kairos serve and checks it prints what the README says.
//
//	KAIROS_URL=http://localhost:8080 KAIROS_SECRET_KEY=$SK go run ./examples/client
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/kairoshq/kairos/api/client"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.New(os.Getenv("KAIROS_URL"), os.Getenv("KAIROS_SECRET_KEY"))
	if err != nil {
		log.Fatal(err)
	}

	// The catalog: PUT is an idempotent upsert.
	for i, cat := range []string{"shoes", "shoes", "bags"} {
		id := fmt.Sprintf("go-sku-%d", i+1)
		if _, _, err := c.PutItem(ctx, client.Item{ID: id, Title: "Item " + id, Category: cat}); err != nil {
			log.Fatal(err)
		}
	}

	// Events: ids are given before the first try, so a retried batch
	// (429, 503, network error) counts once.
	res, err := c.SendEvents(ctx, []client.Event{
		{Type: "view", Visitor: "go-v1", Item: "go-sku-1"},
		{Type: "click", Visitor: "go-v1", Item: "go-sku-2"},
		{Type: "hover", Visitor: "go-v1", Item: "go-sku-3"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("accepted %d; rejected #%d: %s: %s\n", res.Accepted, res.Rejected[0].Index, res.Rejected[0].Field, res.Rejected[0].Reason)

	// The visitor signs up: its history seeds the user. The answer waits
	// (up to 2s) until the link is applied, so the next call reads it.
	if _, err := c.IdentifyWait(ctx, "go-v1", "go-u1", 2*time.Second); err != nil {
		log.Fatal(err)
	}
	recs, err := c.Recommendations(ctx, client.RecQuery{Visitor: "go-v1", User: "go-u1", N: 3})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d recommendations (%s)\n", len(recs.Items), recs.Strategy)

	// Errors carry the API's code and message.
	_, err = c.GetItem(ctx, "go-sku-404")
	fmt.Println(client.IsNotFound(err), err)
}
