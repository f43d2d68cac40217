//go:build !unix

package main

// privateFiles does nothing where there is no umask; file permissions there
// follow the folder's access control list.
func privateFiles() {}
