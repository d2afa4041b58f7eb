# manstyle-help.awk -- turn a --help written like a man page (NAME, SYNOPSIS ... headings) into GNU-style help for help2man.
#
# help2man reads "Usage:" lines as the synopsis, "Options:", "Files:", "Environment:"
# and "Exit status:" as those sections, "Xyz:" as subsections. Text in any other
# layout passes through unchanged.
NR == 1 && $0 != "NAME" { plain = 1 }
plain { print; next }
/^[A-Z][A-Z ]*[A-Z]$/ {
	sect = $0
	if (sect == "NAME" || sect == "DESCRIPTION") { if (sect == "DESCRIPTION") print ""; next }
	if (sect == "SYNOPSIS") { nsyn = 0; next }
	head = substr(sect, 1, 1) tolower(substr(sect, 2))
	print head ":"
	next
}
sect == "NAME" { next }
sect == "SYNOPSIS" {
	if ($0 ~ /^[ \t]*$/) { print ""; next }
	sub(/^ +/, "")
	print (nsyn++ == 0 ? "Usage: " : "  or:  ") $0
	next
}
sect == "" || sect == "DESCRIPTION" { sub(/^ +/, ""); print; next }
{ sub(/^  /, ""); print }
