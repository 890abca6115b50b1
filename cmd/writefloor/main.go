// Command writefloor measures the CPU cost of one write(2) of a WebSocket-sized message to a loopback TCP
// socket whose reader runs in another process: the floor under any server that writes each message to each
// socket (docs/BENCHMARKS.md, Fan-out). Run the writer and the reader pinned to different cores:
//
//	taskset -c 0 writefloor -size 5700 -conns 200 &   # listens, waits for the reader, then writes
//	taskset -c 1 writefloor -read -conns 200
package main

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:39999", "listen (writer) or dial (reader) address")
	size := flag.Int("size", 1200, "message size in bytes")
	conns := flag.Int("conns", 200, "sockets")
	rounds := flag.Int("rounds", 2000, "writes per socket")
	read := flag.Bool("read", false, "be the reader: dial -conns sockets and discard what arrives")
	flag.Parse()
	if err := run(*addr, *size, *conns, *rounds, *read); err != nil {
		fmt.Fprintln(os.Stderr, "writefloor:", err)
		os.Exit(1)
	}
}

func run(addr string, size, conns, rounds int, read bool) error {
	if read {
		done := make(chan error, conns)
		for i := 0; i < conns; i++ {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return err
			}
			go func() {
				_, err := io.Copy(io.Discard, c)
				done <- err
			}()
		}
		for i := 0; i < conns; i++ {
			<-done
		}
		return nil
	}
	runtime.GOMAXPROCS(1)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	defer ln.Close()
	cs := make([]net.Conn, 0, conns)
	for len(cs) < conns {
		c, err := ln.Accept()
		if err != nil {
			return err
		}
		cs = append(cs, c)
	}
	buf := make([]byte, size)
	start, wall := cpu(), time.Now()
	for r := 0; r < rounds; r++ {
		for _, c := range cs {
			if _, err := c.Write(buf); err != nil {
				return err
			}
		}
		time.Sleep(time.Millisecond) // let the reader drain, as between ticks
	}
	used := cpu() - start
	for _, c := range cs {
		c.Close()
	}
	fmt.Printf("size %d B, %d sockets, %d writes: %.2f µs of CPU per write (wall %v)\n",
		size, conns, rounds*conns, float64(used.Nanoseconds())/1e3/float64(rounds*conns), time.Since(wall).Round(time.Millisecond))
	return nil
}

// cpu is the process's user + system CPU time.
func cpu() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
