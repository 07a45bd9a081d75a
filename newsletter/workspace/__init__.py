"""What the editors' workspace (the web editor and its API) keeps: editors and API tokens
(accounts), the inbox of candidate links (inbox), and edits saved onto issue files without
overwriting a change made elsewhere (issue_edit)."""
