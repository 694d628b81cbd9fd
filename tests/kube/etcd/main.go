// Command etcd is etcd's server, built from go.etcd.io/etcd/server/v3 at the version in
// ../versions.env (Debian's etcd is too old for kube-apiserver 1.37).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}
