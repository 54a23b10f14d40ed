only text, no tags: ]] and [[ and \ and "quotes"
