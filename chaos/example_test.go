package chaos_test

import (
	"fmt"
	"time"

	"github.com/ares-sre/ares/chaos"
)

func ExampleParseFault() {
	f, err := chaos.ParseFault("latency", "product", "", 300, time.Minute)
	fmt.Println(f, err)

	_, err = chaos.ParseFault("errors", "cart", "", 150, 0)
	fmt.Println(err)
	// Output:
	// latency 300 ms on product for 1m0s <nil>
	// value: errors must be in 1..100 % (got 150)
}
