// Package mdtest renders Markdown as GitHub shows a job summary or a comment — CommonMark
// with GitHub's extensions (tables, strikethrough, autolinks, task lists), raw HTML let
// through as GitHub lets <details> through — and reads the HTML back into a tree that tests
// can query. It is for tests only.
package mdtest

import (
	"bytes"
	"encoding/xml"
	"io"
	"strings"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
	"github.com/yuin/goldmark/renderer/html"
)

// Node is an element of the rendered HTML, or (Tag "") a text node.
type Node struct {
	Tag      string
	Attrs    map[string]string
	Text     string // of a text node
	Children []*Node
}

var gm = goldmark.New(goldmark.WithExtensions(extension.GFM), goldmark.WithRendererOptions(html.WithUnsafe()))

// Render renders md and parses the HTML. It fails if the HTML does not parse.
func Render(md string) (*Node, string, error) {
	var out bytes.Buffer
	if err := gm.Convert([]byte(md), &out); err != nil {
		return nil, "", err
	}
	n, err := Parse(out.String())
	return n, out.String(), err
}

// Parse reads HTML as goldmark writes it (void elements closed or not, HTML entities)
// into a tree under a node of tag "#document".
func Parse(s string) (*Node, error) {
	d := xml.NewDecoder(strings.NewReader("<body>" + s + "</body>"))
	d.Strict = false
	d.AutoClose = xml.HTMLAutoClose
	d.Entity = xml.HTMLEntity
	root := &Node{Tag: "#document"}
	stack := []*Node{root}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		top := stack[len(stack)-1]
		switch tok := tok.(type) {
		case xml.StartElement:
			n := &Node{Tag: tok.Name.Local, Attrs: map[string]string{}}
			for _, a := range tok.Attr {
				n.Attrs[a.Name.Local] = a.Value
			}
			top.Children = append(top.Children, n)
			stack = append(stack, n)
		case xml.EndElement:
			if len(stack) > 1 {
				stack = stack[:len(stack)-1]
			}
		case xml.CharData:
			top.Children = append(top.Children, &Node{Text: string(tok)})
		}
	}
	return root, nil
}

// All lists the elements named tag under n, in document order.
func (n *Node) All(tag string) []*Node {
	var out []*Node
	for _, c := range n.Children {
		if c.Tag == tag {
			out = append(out, c)
		}
		out = append(out, c.All(tag)...)
	}
	return out
}

// TextContent is the text of n and everything under it.
func (n *Node) TextContent() string {
	if n.Tag == "" {
		return n.Text
	}
	var b strings.Builder
	for _, c := range n.Children {
		b.WriteString(c.TextContent())
	}
	return b.String()
}

// Section is what follows the first top-level heading of the given level ("h2", "h3")
// whose text starts with title, up to the next heading of that level or above; nil if
// there is none.
func (n *Node) Section(level, title string) *Node {
	var body *Node
	for _, doc := range n.All("body")[:1] {
		for _, c := range doc.Children {
			if isHeading(c.Tag) && c.Tag <= level {
				if body != nil {
					return body
				}
				if c.Tag == level && strings.HasPrefix(c.TextContent(), title) {
					body = &Node{Tag: "section"}
				}
				continue
			}
			if body != nil {
				body.Children = append(body.Children, c)
			}
		}
	}
	return body
}

func isHeading(tag string) bool {
	return len(tag) == 2 && tag[0] == 'h' && tag[1] >= '1' && tag[1] <= '6'
}

// TableRows is each row of the first table under n as its cells' texts, trimmed (the
// header row first); nil for no table or a nil n.
func (n *Node) TableRows() [][]string {
	if n == nil {
		return nil
	}
	tables := n.All("table")
	if len(tables) == 0 {
		return nil
	}
	var rows [][]string
	for _, tr := range tables[0].All("tr") {
		var cells []string
		for _, c := range tr.Children {
			if c.Tag == "td" || c.Tag == "th" {
				cells = append(cells, strings.TrimSpace(c.TextContent()))
			}
		}
		rows = append(rows, cells)
	}
	return rows
}

// Items are the <li> of the lists directly in n (a Section); nil for a nil n.
func (n *Node) Items() []*Node {
	if n == nil {
		return nil
	}
	var items []*Node
	for _, c := range n.Children {
		if c.Tag == "ul" || c.Tag == "ol" {
			for _, li := range c.Children {
				if li.Tag == "li" {
					items = append(items, li)
				}
			}
		}
	}
	return items
}
