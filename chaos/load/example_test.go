package load_test

import (
	"fmt"
	"time"

	"github.com/ares-sre/ares/chaos/load"
)

func ExampleOptions_Validate() {
	o := load.Options{Target: "http://127.0.0.1:8000", Rate: 100, Duration: time.Minute,
		Surge: &load.Surge{Factor: 4, After: 20 * time.Second, For: 20 * time.Second}}
	fmt.Println(o.Validate(), o.RateAt(10*time.Second), o.RateAt(30*time.Second))

	o.Target = "http://shop.example.com"
	fmt.Println(o.Validate())
	// Output:
	// <nil> 100 400
	// target: "shop.example.com" is not a loopback address: load only goes to this machine (127.0.0.1, ::1, localhost) or a container's port published there
}
