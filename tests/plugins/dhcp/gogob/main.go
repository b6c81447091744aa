// gogob: Go's encoding/gob on the types pycni's dhcp speaks, for interop tests.
//
//	gogob encode CASE   print the hex gob stream of CASE's canned value
//	gogob json CASE     print the canned value as JSON
//	gogob decode CASE   for each hex line on stdin: decode into CASE's type,
//	                    print it as JSON (or "error: ..." when gob refuses)
//
// Built by tests/plugins/dhcp/test_gob.py with Debian's CNI sources (GOPATH).
package main

import (
	"bufio"
	"bytes"
	"encoding/gob"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/rpc"
	"os"
	"reflect"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	current "github.com/containernetworking/cni/pkg/types/100"
)

type Nested struct {
	X int
	Y string
}

type Basic struct {
	B   bool
	I   int
	I8  int8
	U   uint64
	U16 uint16
	F   float64
	F32 float32
	S   string
	Y   []byte
	P   *int
	PS  *string
	L   []int
	LS  []string
	A   [3]int
	M   map[string]int
	N   Nested
	NP  *Nested
	LN  []Nested
	LP  []*Nested
	IP  net.IP
	Net net.IPNet
}

func intp(i int) *int { return &i }

func cases() map[string]interface{} {
	s := "pointed"
	_, n4, _ := net.ParseCIDR("198.18.0.0/15")
	_, n6, _ := net.ParseCIDR("fd00::/8")
	return map[string]interface{}{
		"basic": &Basic{
			B: true, I: -123456789, I8: -128, U: math.MaxUint64, U16: 65535,
			F: 0.1, F32: 1.5, S: "héllo", Y: []byte{0, 1, 255}, P: intp(42), PS: &s,
			L: []int{0, -1, 1, 1 << 40}, LS: []string{"", "a"}, A: [3]int{0, 7, 0},
			M: map[string]int{"k": 1}, N: Nested{X: 1, Y: "n"}, NP: &Nested{Y: "p"},
			LN: []Nested{{}, {X: 2}}, LP: []*Nested{{X: 3}},
			IP:  net.ParseIP("198.18.0.1"),
			Net: net.IPNet{IP: net.ParseIP("fd00::1"), Mask: net.CIDRMask(64, 128)},
		},
		"zero":  &Basic{},
		"empty": &struct{}{},
		"ints":  &[]int64{0, 1, -1, 63, 64, -64, -65, 127, 128, 255, 256, math.MaxInt64, math.MinInt64, 1 << 32, -(1 << 32)},
		"uints": &[]uint64{0, 1, 127, 128, 255, 256, 65535, 65536, 1 << 56, math.MaxUint64},
		"floats": &[]float64{0, 1, -1, 0.5, 17, 1e300, -2.5e-300, math.SmallestNonzeroFloat64,
			math.MaxFloat64},
		"strings": &[]string{"", "a", "\u00e9\u4e2d\U0001f600", string(make([]byte, 200))},
		"cmdargs": &skel.CmdArgs{
			ContainerID: "gbctr", Netns: "/var/run/netns/gbns", IfName: "eth0",
			Args: "IgnoreUnknown=1;K=V", Path: "/opt/cni/bin",
			StdinData: []byte(`{"cniVersion":"1.0.0","name":"gbnet"}`),
		},
		"result": &current.Result{
			CNIVersion: "1.0.0",
			Interfaces: []*current.Interface{{Name: "eth0", Mac: "02:00:00:00:00:01", Sandbox: "/var/run/netns/gbns"}},
			IPs: []*current.IPConfig{
				{Interface: intp(0), Address: net.IPNet{IP: net.ParseIP("198.18.0.5"), Mask: net.CIDRMask(15, 32)},
					Gateway: net.ParseIP("198.18.0.1")},
				{Interface: intp(1), Address: net.IPNet{IP: net.ParseIP("fd00::5"), Mask: net.CIDRMask(64, 128)}},
			},
			Routes: []*types.Route{{Dst: *n4, GW: net.ParseIP("198.18.0.1")}, {Dst: *n6}},
			DNS:    types.DNS{Nameservers: []string{"198.18.0.53"}, Domain: "gb.test", Search: []string{"a", "b"}, Options: []string{"ndots:2"}},
		},
		"request":  &rpc.Request{ServiceMethod: "DHCP.Allocate", Seq: 7},
		"response": &rpc.Response{ServiceMethod: "DHCP.Release", Seq: 300, Error: "boom"},
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, err)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 3 {
		fail(fmt.Errorf("usage: gogob encode|json|decode CASE"))
	}
	value, ok := cases()[os.Args[2]]
	if !ok {
		fail(fmt.Errorf("unknown case %q", os.Args[2]))
	}
	switch os.Args[1] {
	case "encode":
		var buf bytes.Buffer
		if err := gob.NewEncoder(&buf).Encode(value); err != nil {
			fail(err)
		}
		fmt.Println(hex.EncodeToString(buf.Bytes()))
	case "json":
		out, err := json.Marshal(value)
		if err != nil {
			fail(err)
		}
		fmt.Println(string(out))
	case "decode":
		scanner := bufio.NewScanner(os.Stdin)
		scanner.Buffer(make([]byte, 1<<20), 1<<24)
		for scanner.Scan() {
			raw, err := hex.DecodeString(scanner.Text())
			if err != nil {
				fail(err)
			}
			into := reflect.New(reflect.TypeOf(value).Elem())
			if err := gob.NewDecoder(bytes.NewReader(raw)).DecodeValue(into); err != nil {
				fmt.Println("error: " + err.Error())
				continue
			}
			out, err := json.Marshal(into.Interface())
			if err != nil {
				fail(err)
			}
			fmt.Println(string(out))
		}
	default:
		fail(fmt.Errorf("unknown mode %q", os.Args[1]))
	}
}
