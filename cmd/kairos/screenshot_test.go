package main

import (
	"bytes"
	"cmp"
	"context"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"maps"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/kairoshq/kairos/signals/tracker/browsertest"
)

// Screenshots and console checks of the browser end-to-end tests
// (dashboard, retrain and holdout panels).

// checkConsole fails t with each error the browser's console logged,
// except those ignore accepts (nil: none).
func checkConsole(t *testing.T, ctx context.Context, b *browsertest.Browser, ignore func(msg string) bool) {
	t.Helper()
	logs, err := b.Logs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range logs {
		if l.Level == "SEVERE" && (ignore == nil || !ignore(l.Message)) {
			t.Errorf("browser console: %s", l.Message)
		}
	}
}

// shotElement saves the element css, scrolled into view and cropped from
// a screenshot of the viewport with pad CSS pixels around it, as a PNG
// at path (saveShot).
func shotElement(t *testing.T, ctx context.Context, b *browsertest.Browser, css string, pad float64, path string) {
	t.Helper()
	var r struct{ X, Y, W, H, Ratio float64 }
	if err := b.ExecuteTo(ctx, &r, `var e = document.querySelector(arguments[0]); e.scrollIntoView(); var b = e.getBoundingClientRect();
		return {x: b.left, y: b.top, w: b.width, h: b.height, ratio: window.devicePixelRatio || 1}`, css); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond)
	img := screenshot(t, ctx, b)
	crop := image.Rect(int((r.X-pad)*r.Ratio), int((r.Y-pad)*r.Ratio), int((r.X+r.W+pad)*r.Ratio), int((r.Y+r.H+pad)*r.Ratio)).Intersect(img.Bounds())
	saveShot(t, img.(interface {
		SubImage(image.Rectangle) image.Image
	}).SubImage(crop), path)
}

// screenshot returns a screenshot of b's viewport.
func screenshot(t *testing.T, ctx context.Context, b *browsertest.Browser) image.Image {
	t.Helper()
	raw, err := b.Screenshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// saveShot saves img as a PNG at path: 256 colours (quantize) and the
// best compression keep it around a third of Chromium's size.
func saveShot(t *testing.T, img image.Image, path string) {
	t.Helper()
	var out bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestCompression}).Encode(&out, quantize(img)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d×%d, %d KB)", path, img.Bounds().Dx(), img.Bounds().Dy(), out.Len()/1024)
}

// quantize maps img to a palette of its 256 most used colours (counted at
// 5 bits per channel, each the mean of the pixels it stands for), with
// Floyd–Steinberg dithering: a UI screenshot has few colours, so text and
// panels stay exact and only pictures dither.
func quantize(img image.Image) *image.Paletted {
	type acc struct{ n, r, g, b uint64 }
	buckets := map[uint32]*acc{}
	bnd := img.Bounds()
	for y := bnd.Min.Y; y < bnd.Max.Y; y++ {
		for x := bnd.Min.X; x < bnd.Max.X; x++ {
			r, g, b, _ := img.At(x, y).RGBA()
			k := (r>>11)<<10 | (g>>11)<<5 | b>>11
			a := buckets[k]
			if a == nil {
				a = &acc{}
				buckets[k] = a
			}
			a.n++
			a.r += uint64(r >> 8)
			a.g += uint64(g >> 8)
			a.b += uint64(b >> 8)
		}
	}
	keys := slices.Collect(maps.Keys(buckets))
	slices.SortFunc(keys, func(a, b uint32) int { return cmp.Or(cmp.Compare(buckets[b].n, buckets[a].n), cmp.Compare(a, b)) })
	pal := make(color.Palette, 0, 256)
	for _, k := range keys[:min(256, len(keys))] {
		a := buckets[k]
		pal = append(pal, color.RGBA{uint8(a.r / a.n), uint8(a.g / a.n), uint8(a.b / a.n), 255})
	}
	out := image.NewPaletted(bnd, pal)
	draw.FloydSteinberg.Draw(out, bnd, img, bnd.Min)
	return out
}
