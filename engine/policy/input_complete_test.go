package policy

import (
	"bytes"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/ares-sre/ares/engine"
)

// fill sets every exported field reachable from v to a non-zero value derived from seed:
// pointers allocated, maps and slices given one element. A field added to the facts types
// without being added to the converter or the cache key makes the tests below fail.
func fill(v reflect.Value, seed int) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.Type() == reflect.TypeOf(&time.Time{}) || v.Type().Elem().Kind() != reflect.Invalid {
			v.Set(reflect.New(v.Type().Elem()))
			fill(v.Elem(), seed)
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Date(2026, 12, 1, 8, 0, seed%60, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), seed+i+1)
			}
		}
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k := reflect.New(v.Type().Key()).Elem()
		fill(k, seed)
		e := reflect.New(v.Type().Elem()).Elem()
		fill(e, seed+1)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(s.Index(0), seed)
		v.Set(s)
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", seed))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32:
		v.SetInt(int64(seed + 1))
	case reflect.Uint64, reflect.Uint:
		v.SetUint(uint64(seed + 1))
	case reflect.Float64:
		v.SetFloat(float64(seed) + 0.5)
	}
}

func TestFactsValueCoversEveryField(t *testing.T) {
	var f engine.Facts
	fill(reflect.ValueOf(&f).Elem(), 1)
	f.Version = 1
	assertSameValue(t, "every field set", FactsValue(&f), viaJSON(t, &f))
}

// Every leaf of a service changes its cache key, so a change never reuses stale decisions.
func TestServiceKeyCoversEveryField(t *testing.T) {
	var base engine.Service
	fill(reflect.ValueOf(&base).Elem(), 1)
	key := appendServiceKey(nil, &base)
	var walk func(path string, get func(*engine.Service) reflect.Value, typ reflect.Type)
	walk = func(path string, get func(*engine.Service) reflect.Value, typ reflect.Type) {
		switch typ.Kind() {
		case reflect.Pointer:
			walk(path, func(s *engine.Service) reflect.Value { return get(s).Elem() }, typ.Elem())
			return
		case reflect.Slice:
			walk(path+"[0]", func(s *engine.Service) reflect.Value { return get(s).Index(0) }, typ.Elem())
			return
		case reflect.Struct:
			if typ != reflect.TypeOf(time.Time{}) {
				for i := range typ.NumField() {
					i := i
					walk(path+"."+typ.Field(i).Name, func(s *engine.Service) reflect.Value { return get(s).Field(i) }, typ.Field(i).Type)
				}
				return
			}
		}
		t.Run(path, func(t *testing.T) {
			var s engine.Service
			fill(reflect.ValueOf(&s).Elem(), 1)
			v := get(&s)
			if v.Kind() == reflect.Bool {
				v.SetBool(!v.Bool())
			} else {
				fill(v, 99) // a different value (for maps: a different key and value)
			}
			if bytes.Equal(appendServiceKey(nil, &s), key) {
				t.Errorf("changing %s leaves the cache key unchanged", path)
			}
		})
	}
	walk("service", func(s *engine.Service) reflect.Value { return reflect.ValueOf(s).Elem() }, reflect.TypeOf(base))
}
