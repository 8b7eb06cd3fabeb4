package tenant_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/kairoshq/kairos/engine/storage/storagetest"
	"github.com/kairoshq/kairos/tenant"
)

// A registry on a store's documents: create a tenant, suspend it, rotate
// its keys.
func ExampleRegistry() {
	ctx := context.Background()
	reg := tenant.NewRegistry(storagetest.NewMem(nil), nil)
	t, err := reg.Create(ctx, tenant.Spec{ID: "shop-a", Name: "Shop A", Quotas: tenant.Quotas{EventsPerDay: 1_000_000}})
	if err != nil {
		panic(err)
	}
	fmt.Println(t.ID, t.Status, strings.HasPrefix(t.Keys.Secret, "sk_"), strings.HasPrefix(t.Keys.Publishable, "pk_"))

	_, err = reg.Create(ctx, tenant.Spec{ID: "shop-a"})
	fmt.Println(err)

	t, _ = reg.SetStatus(ctx, "shop-a", tenant.Suspended)
	fmt.Println(t.Status)

	old := t.Keys.Secret
	t, _ = reg.Rotate(ctx, "shop-a", 0) // old keys stop at once (no grace)
	fmt.Println(t.Keys.Secret != old)
	// Output:
	// shop-a active true true
	// tenant "shop-a" exists
	// suspended
	// true
}
