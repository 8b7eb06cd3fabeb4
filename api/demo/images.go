package demo

import (
	"fmt"
	"strings"
)

// colorHex maps the catalog's color names to fills.
var colorHex = map[string]string{
	"Graphite": "#3b3f46", "Sand": "#d8c3a0", "Teal": "#1f8a8a", "Coral": "#f07a62", "Ivory": "#f3eee2", "Navy": "#23395d",
	"Olive": "#6b7a3a", "Crimson": "#b3243b", "Slate": "#6b7c8f", "Amber": "#e0a526", "Sage": "#9db49a", "Plum": "#6e3b6e",
}

// productSVG draws a product: a soft background in the product's hue and
// a stylised object of its category in its color; view (0..2) varies
// the angle and the light, for the gallery.
func productSVG(p *Product, view int) string {
	fill := colorHex[p.Color]
	if fill == "" {
		fill = "#777"
	}
	hue := (p.hue + 18*view) % 360
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 400 400" role="img" aria-label="%s">`, escapeXML(p.Title))
	fmt.Fprintf(&b, `<defs><linearGradient id="bg" x1="0" y1="0" x2="1" y2="1"><stop offset="0" stop-color="hsl(%d,60%%,94%%)"/><stop offset="1" stop-color="hsl(%d,45%%,84%%)"/></linearGradient>`, hue, (hue+30)%360)
	b.WriteString(`<radialGradient id="shade" cx=".35" cy=".3" r=".8"><stop offset="0" stop-color="#fff" stop-opacity=".35"/><stop offset="1" stop-color="#000" stop-opacity=".18"/></radialGradient></defs>`)
	b.WriteString(`<rect width="400" height="400" fill="url(#bg)"/>`)
	fmt.Fprintf(&b, `<ellipse cx="200" cy="330" rx="%d" ry="14" fill="#000" opacity=".10"/>`, 120-10*view)
	transform := [...]string{"", `transform="rotate(-8 200 200)"`, `transform="translate(400 0) scale(-1 1)"`}[view%3]
	fmt.Fprintf(&b, `<g %s>`, transform)
	switch p.Category {
	case "sneakers":
		sneaker(&b, fill, p.shape)
	case "bags":
		bag(&b, fill, p.shape)
	case "watches":
		watch(&b, fill, p.shape)
	case "audio":
		audio(&b, fill, p.shape)
	case "lighting":
		lamp(&b, fill, p.shape)
	default:
		kitchen(&b, fill, p.shape)
	}
	b.WriteString(`</g></svg>`)
	return b.String()
}

func sneaker(b *strings.Builder, fill string, shape int) {
	top := [...]int{150, 130, 110}[shape]
	fmt.Fprintf(b, `<path d="M70 270 C70 240 90 225 120 220 L170 %d C190 %d 215 %d 230 200 C250 225 300 235 330 245 C350 252 350 280 335 285 L80 290 C70 290 68 282 70 270Z" fill="%s"/>`, top, top-8, top, fill)
	b.WriteString(`<path d="M70 270 C70 240 90 225 120 220 L170 150 C190 142 215 150 230 200 C250 225 300 235 330 245 C350 252 350 280 335 285 L80 290 C70 290 68 282 70 270Z" fill="url(#shade)" opacity=".6"/>`)
	b.WriteString(`<path d="M66 282 L340 282 C345 292 340 302 330 302 L80 302 C68 302 62 294 66 282Z" fill="#f7f7f2" stroke="#0002"/>`)
	for i := range 4 {
		x := 180 + 14*i
		fmt.Fprintf(b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="#fff" stroke-width="4" stroke-linecap="round" opacity=".85"/>`, x, 175+8*i, x+22, 170+8*i)
	}
	b.WriteString(`<path d="M250 250 C280 255 305 262 325 268" stroke="#fff" stroke-width="5" fill="none" opacity=".7"/>`)
}

func bag(b *strings.Builder, fill string, shape int) {
	w := [...]int{170, 200, 150}[shape]
	x := 200 - w/2
	fmt.Fprintf(b, `<path d="M%d 140 C%d 110 %d 110 %d 140" stroke="%s" stroke-width="14" fill="none" stroke-linecap="round"/>`, 200-40, 200-40, 200+40, 200+40, fill)
	fmt.Fprintf(b, `<rect x="%d" y="130" width="%d" height="190" rx="36" fill="%s"/>`, x, w, fill)
	fmt.Fprintf(b, `<rect x="%d" y="130" width="%d" height="190" rx="36" fill="url(#shade)"/>`, x, w)
	fmt.Fprintf(b, `<rect x="%d" y="225" width="%d" height="70" rx="16" fill="#0000001f" stroke="#ffffff55"/>`, x+25, w-50)
	fmt.Fprintf(b, `<line x1="%d" y1="240" x2="%d" y2="240" stroke="#fff" stroke-width="3" opacity=".7"/>`, x+40, x+w-40)
	b.WriteString(`<rect x="188" y="232" width="24" height="10" rx="3" fill="#e9d8a6"/>`)
}

func watch(b *strings.Builder, fill string, shape int) {
	fmt.Fprintf(b, `<rect x="168" y="50" width="64" height="300" rx="20" fill="%s"/>`, fill)
	fmt.Fprintf(b, `<rect x="168" y="50" width="64" height="300" rx="20" fill="url(#shade)"/>`)
	r := [...]int{78, 84, 72}[shape]
	fmt.Fprintf(b, `<circle cx="200" cy="200" r="%d" fill="#c9ccd1"/><circle cx="200" cy="200" r="%d" fill="%s"/>`, r+10, r, [...]string{"#f8f6f0", "#1d2330", "#eef3f7"}[shape])
	ink := [...]string{"#222", "#eee", "#234"}[shape]
	for i := range 12 {
		fmt.Fprintf(b, `<line x1="200" y1="%d" x2="200" y2="%d" stroke="%s" stroke-width="%d" transform="rotate(%d 200 200)"/>`, 200-r+6, 200-r+(map[bool]int{true: 20, false: 13}[i%3 == 0]), ink, map[bool]int{true: 5, false: 2}[i%3 == 0], 30*i)
	}
	fmt.Fprintf(b, `<line x1="200" y1="200" x2="200" y2="%d" stroke="%s" stroke-width="6" stroke-linecap="round" transform="rotate(-50 200 200)"/>`, 200-r/2, ink)
	fmt.Fprintf(b, `<line x1="200" y1="200" x2="200" y2="%d" stroke="%s" stroke-width="4" stroke-linecap="round" transform="rotate(70 200 200)"/>`, 200-r+18, ink)
	b.WriteString(`<line x1="200" y1="220" x2="200" y2="150" stroke="#e4572e" stroke-width="2" transform="rotate(140 200 200)"/><circle cx="200" cy="200" r="6" fill="#e4572e"/>`)
	fmt.Fprintf(b, `<rect x="%d" y="192" width="14" height="16" rx="3" fill="#c9ccd1"/>`, 200+r+8)
}

func audio(b *strings.Builder, fill string, shape int) {
	switch shape {
	case 0, 1: // over-ear headphones
		fmt.Fprintf(b, `<path d="M110 230 C110 110 290 110 290 230" stroke="%s" stroke-width="18" fill="none" stroke-linecap="round"/>`, fill)
		for _, x := range []int{90, 270} {
			fmt.Fprintf(b, `<rect x="%d" y="205" width="50" height="95" rx="22" fill="%s"/><rect x="%d" y="205" width="50" height="95" rx="22" fill="url(#shade)"/>`, x, fill, x)
			fmt.Fprintf(b, `<rect x="%d" y="215" width="14" height="75" rx="7" fill="#0003"/>`, x+map[bool]int{true: 36, false: 0}[x < 200])
		}
	default: // speaker
		fmt.Fprintf(b, `<rect x="120" y="90" width="160" height="230" rx="28" fill="%s"/><rect x="120" y="90" width="160" height="230" rx="28" fill="url(#shade)"/>`, fill)
		b.WriteString(`<circle cx="200" cy="250" r="48" fill="#0004"/><circle cx="200" cy="250" r="20" fill="#0006"/><circle cx="200" cy="150" r="24" fill="#0004"/><circle cx="200" cy="150" r="9" fill="#0006"/>`)
	}
}

func lamp(b *strings.Builder, fill string, shape int) {
	b.WriteString(`<circle cx="200" cy="190" r="110" fill="#fff6c9" opacity=".55"/>`)
	switch shape {
	case 0: // desk lamp
		fmt.Fprintf(b, `<path d="M150 310 L250 310 L240 295 L160 295Z" fill="%s"/><line x1="200" y1="298" x2="170" y2="200" stroke="%s" stroke-width="9"/><line x1="170" y1="200" x2="230" y2="140" stroke="%s" stroke-width="9"/>`, fill, fill, fill)
		fmt.Fprintf(b, `<path d="M205 120 L275 150 L255 190 L190 160Z" fill="%s"/><path d="M205 120 L275 150 L255 190 L190 160Z" fill="url(#shade)"/>`, fill)
	case 1: // pendant
		b.WriteString(`<line x1="200" y1="20" x2="200" y2="150" stroke="#333" stroke-width="3"/>`)
		fmt.Fprintf(b, `<path d="M200 150 C130 150 110 220 110 240 L290 240 C290 220 270 150 200 150Z" fill="%s"/><path d="M200 150 C130 150 110 220 110 240 L290 240 C290 220 270 150 200 150Z" fill="url(#shade)"/>`, fill)
		b.WriteString(`<ellipse cx="200" cy="242" rx="40" ry="10" fill="#fff8d6"/>`)
	default: // floor lamp
		fmt.Fprintf(b, `<path d="M150 90 L250 90 L275 170 L125 170Z" fill="%s"/><path d="M150 90 L250 90 L275 170 L125 170Z" fill="url(#shade)"/>`, fill)
		b.WriteString(`<line x1="200" y1="170" x2="200" y2="315" stroke="#444" stroke-width="7"/><ellipse cx="200" cy="318" rx="55" ry="10" fill="#444"/>`)
	}
}

func kitchen(b *strings.Builder, fill string, shape int) {
	switch shape {
	case 0: // mug
		fmt.Fprintf(b, `<path d="M270 180 C320 180 320 260 270 260" stroke="%s" stroke-width="16" fill="none"/>`, fill)
		fmt.Fprintf(b, `<rect x="120" y="150" width="160" height="170" rx="22" fill="%s"/><rect x="120" y="150" width="160" height="170" rx="22" fill="url(#shade)"/>`, fill)
		b.WriteString(`<ellipse cx="200" cy="152" rx="78" ry="12" fill="#3b2a1e"/>`)
	case 1: // kettle
		fmt.Fprintf(b, `<path d="M130 310 L270 310 C285 250 270 170 200 165 C130 170 115 250 130 310Z" fill="%s"/><path d="M130 310 L270 310 C285 250 270 170 200 165 C130 170 115 250 130 310Z" fill="url(#shade)"/>`, fill)
		fmt.Fprintf(b, `<path d="M265 240 L320 185" stroke="%s" stroke-width="16" stroke-linecap="round"/><path d="M160 170 C160 110 240 110 240 170" stroke="#333" stroke-width="10" fill="none"/>`, fill)
	default: // pour-over
		fmt.Fprintf(b, `<path d="M130 130 L270 130 L225 210 L175 210Z" fill="%s"/><path d="M130 130 L270 130 L225 210 L175 210Z" fill="url(#shade)"/>`, fill)
		b.WriteString(`<path d="M150 220 L250 220 C260 280 250 315 200 318 C150 315 140 280 150 220Z" fill="#ffffff88" stroke="#0003"/><rect x="150" y="262" width="100" height="52" rx="12" fill="#6b3f22" opacity=".8"/>`)
	}
	for i := range 3 {
		x := 175 + 25*i
		b.WriteString(fmt.Sprintf(`<path d="M%d 120 C%d 100 %d 90 %d 70" stroke="#0003" stroke-width="5" fill="none" stroke-linecap="round"/>`, x, x-10, x+10, x))
	}
}

// bannerSVG draws an offer banner image: a wide gradient with the
// category's object small on the right.
func bannerSVG(c *Catalog, category string) string {
	ps := c.InCategory(category)
	if len(ps) == 0 {
		return ""
	}
	hero := ps[0] // the category's first drawing of its main shape
	for _, p := range ps {
		if p.shape == 0 {
			hero = p
			break
		}
	}
	inner := productSVG(hero, 0)
	inner = inner[strings.Index(inner, "<g"):strings.LastIndex(inner, "</svg>")]
	hue := hero.hue
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 800 300"><defs><linearGradient id="bb" x1="0" x2="1"><stop offset="0" stop-color="hsl(%d,70%%,45%%)"/><stop offset="1" stop-color="hsl(%d,70%%,62%%)"/></linearGradient>`, hue, (hue+40)%360)
	b.WriteString(`<radialGradient id="shade" cx=".35" cy=".3" r=".8"><stop offset="0" stop-color="#fff" stop-opacity=".35"/><stop offset="1" stop-color="#000" stop-opacity=".18"/></radialGradient></defs>`)
	b.WriteString(`<rect width="800" height="300" fill="url(#bb)"/><circle cx="640" cy="150" r="135" fill="#fff" opacity=".18"/>`)
	fmt.Fprintf(&b, `<svg x="500" y="10" width="280" height="280" viewBox="0 0 400 400">%s</svg></svg>`, inner)
	return b.String()
}

func escapeXML(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;").Replace(s)
}
