"""Sources → articles: fetch URLs, files and feeds (sources, download), then extract the article's
text and metadata (extract, with plaintext, frontmatter and boilerplate for the cleaning)."""
