// Package examples holds Tarpon's example app. WWW is the app folder
// examples/www, embedded so that the tarpon binary serves it with no files
// on disk (make run); dot files (.preload, .lua/) are included.
package examples

import (
	"embed"
	"io/fs"
)

//go:embed all:www
var www embed.FS

// WWW returns the example app's files, rooted at the app folder.
func WWW() fs.FS {
	sub, err := fs.Sub(www, "www")
	if err != nil {
		panic(err) // the embed pattern above guarantees the folder exists
	}
	return sub
}
