//! Markdown for chat messages, rendered to HTML that is safe to insert: raw HTML in a message
//! is shown as text, links may only point to http(s), mailto or this site, images become
//! links (a reply must not make the browser load a remote image: that would tell a third party
//! who read it, and when), and code blocks keep their language as a class. Only the server
//! renders: the chat page gets stored replies as HTML, so the browser carries no parser.

use pulldown_cmark::{CowStr, Event, LinkType, Options, Parser, Tag, TagEnd};

fn safe_url(url: &str) -> bool {
    let lower = url.trim().to_ascii_lowercase();
    // Relative links and anchors stay; anything with a scheme must be one of these.
    match lower.split_once(':') {
        Some((scheme, _)) if !scheme.contains('/') && !scheme.contains('#') => {
            matches!(scheme, "http" | "https" | "mailto")
        }
        _ => true,
    }
}

/// A link's destination as rendered: itself when safe, else `#`.
fn shown_url(url: CowStr<'_>) -> CowStr<'_> {
    if safe_url(&url) {
        url
    } else {
        CowStr::Borrowed("#")
    }
}

/// HTML for a message. Never contains markup the message itself wrote.
pub fn render_markdown(text: &str) -> String {
    let options =
        Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TABLES | Options::ENABLE_TASKLISTS;
    let events = Parser::new_ext(text, options).flat_map(|event| match event {
        // Raw HTML becomes visible text.
        Event::Html(html) | Event::InlineHtml(html) => vec![Event::Text(html)],
        Event::Start(Tag::Link {
            link_type,
            dest_url,
            title,
            id,
        }) => vec![Event::Start(Tag::Link {
            link_type,
            dest_url: shown_url(dest_url),
            title,
            id,
        })],
        // An image is shown as a link to it, labelled with its description.
        Event::Start(Tag::Image {
            dest_url,
            title,
            id,
            ..
        }) => vec![
            Event::Start(Tag::Link {
                link_type: LinkType::Inline,
                dest_url: shown_url(dest_url),
                title,
                id,
            }),
            Event::Text(CowStr::Borrowed("image: ")),
        ],
        Event::End(TagEnd::Image) => vec![Event::End(TagEnd::Link)],
        other => vec![other],
    });
    let mut html = String::with_capacity(text.len() * 3 / 2);
    pulldown_cmark::html::push_html(&mut html, events);
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_common_markdown() {
        let html =
            render_markdown("**bold** and `code`\n\n- one\n- two\n\n```rust\nfn main() {}\n```");
        assert!(html.contains("<strong>bold</strong>"), "{html}");
        assert!(html.contains("<code>code</code>"), "{html}");
        assert!(html.contains("<li>one</li>"), "{html}");
        assert!(
            html.contains("<pre><code class=\"language-rust\">fn main() {}"),
            "{html}"
        );
    }

    #[test]
    fn raw_html_is_shown_as_text() {
        for attack in [
            "<script>alert(1)</script>",
            "hi <img src=x onerror=alert(1)>",
            "<div onclick=\"x()\">block</div>",
            "<iframe src=\"https://evil\"></iframe>",
        ] {
            let html = render_markdown(attack);
            assert!(!html.contains("<script"), "{attack} -> {html}");
            assert!(!html.contains("<img"), "{attack} -> {html}");
            assert!(!html.contains("<div"), "{attack} -> {html}");
            assert!(!html.contains("<iframe"), "{attack} -> {html}");
            assert!(html.contains("&lt;"), "{attack} -> {html}");
        }
    }

    #[test]
    fn only_safe_links_survive() {
        let html = render_markdown("[a](javascript:alert(1)) [b](https://example.com) [c](JaVaScRiPt:x) [d](/local) ![i](data:text/html,x)");
        assert!(!html.to_lowercase().contains("javascript:"), "{html}");
        assert!(!html.contains("data:"), "{html}");
        assert!(html.contains("href=\"https://example.com\""), "{html}");
        assert!(html.contains("href=\"/local\""), "{html}");
        assert!(html.contains("href=\"#\""), "{html}");
    }

    #[test]
    fn images_are_links_never_loaded() {
        let html = render_markdown(
            "![a chart](https://tracker.example/pixel.png) and ![](http://x.example/i.gif) ![bad](javascript:x)",
        );
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("<a href=\"https://tracker.example/pixel.png\">image: a chart</a>"),
            "{html}"
        );
        assert!(
            html.contains("<a href=\"http://x.example/i.gif\">image: </a>"),
            "{html}"
        );
        assert!(!html.contains("javascript:"), "{html}");
    }

    #[test]
    fn code_is_escaped() {
        let html = render_markdown("```\n<b>not bold</b>\n```");
        assert!(html.contains("&lt;b&gt;not bold&lt;/b&gt;"), "{html}");
    }
}
