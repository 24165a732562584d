-- links.lua: the pandoc filter of scripts/build-docs.sh. It makes the HTML tree browsable:
-- links to .md pages point at the rendered .html pages, links to a directory at its index.html;
-- the page title comes from the first heading; and, when UVS_DOCS_HEADINGS names a file, every
-- heading is written to it (level, id, text as Markdown) for the contents page.
local headings_file = os.getenv("UVS_DOCS_HEADINGS")
if headings_file == "" then headings_file = nil end

-- A relative link inside the repository: no scheme, not protocol-relative, not an anchor alone.
local function is_local(target)
  return not target:match("^%a[%w+.-]*:") and not target:match("^//") and target ~= ""
    and not target:match("^#")
end

function Link(link)
  local target = link.target
  if is_local(target) then
    local path, anchor = target:match("^([^#]*)(#?.*)$")
    if path:match("%.md$") then
      path = path:gsub("%.md$", ".html")
    elseif path:match("/$") then
      path = path .. "index.html"
    end
    link.target = path .. anchor
  end
  return link
end

-- Markdown-escapes text for a link label on the contents page.
local function escape(text)
  return (text:gsub("([%[%]%*_`\\<>])", "\\%1"))
end

function Pandoc(doc)
  local title
  local out = headings_file and assert(io.open(headings_file, "w"))
  for _, block in ipairs(doc.blocks) do
    if block.t == "Header" then
      local text = pandoc.utils.stringify(block.content)
      if block.level == 1 and not title then title = text end
      if out then
        out:write(("%d\t%s\t%s\n"):format(block.level, block.identifier, escape(text)))
      end
    end
  end
  if out then out:close() end
  if title and not doc.meta.pagetitle then doc.meta.pagetitle = title end
  return doc
end
