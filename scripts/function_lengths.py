#!/usr/bin/env python3
"""The functions of C++ files longer than a limit (lines from the opening to the closing brace).

scripts/function_lengths.py [--max N] FILE...   (default N: 150, the project's rule for src/core)
Prints "lines file:line name" for each function over N lines; exit status 1 when there is one.
A block is a function when it is opened directly inside a namespace / class / struct (or at file
scope) and its header (the text since the previous ';', '{' or '}') ends with ')' plus qualifiers.
A heuristic (no C++ parser): it is meant for this project's formatting."""
import re, sys, glob
def strip(src):
    # remove comments, strings, chars (keep newlines)
    out=[];i=0;n=len(src)
    while i<n:
        c=src[i]
        if src.startswith('//',i):
            j=src.find('\n',i); j=n if j<0 else j; i=j; continue
        if src.startswith('/*',i):
            j=src.find('*/',i+2); seg=src[i:j+2]; out.append('\n'*seg.count('\n')); i=j+2; continue
        if c=='"' or c=="'":
            # raw strings
            if c=='"' and i>0 and src[i-1]=='R':
                m=re.match(r'"([^(]*)\(',src[i:]); d=m.group(1); end=src.find(')'+d+'"',i); seg=src[i:end+len(d)+2]
                out.append('""'+'\n'*seg.count('\n')); i=end+len(d)+2; continue
            j=i+1
            while j<n and src[j]!=c:
                j+= 2 if src[j]=='\\' else 1
            out.append(c+c); i=j+1; continue
        out.append(c); i+=1
    return ''.join(out)
args=sys.argv[1:]
lim=150
if args[:1]==['--max']:
    lim=int(args[1]); args=args[2:]
res=[]
for f in args:
    s=strip(open(f).read())
    s=re.sub(r'(?m)^[ \t]*#.*$','',s)
    stack=[] # (kind, startline, name)
    hdr_start=0
    line=1
    for i,c in enumerate(s):
        if c=='\n': line+=1
        if c in ';{}':
            if c=='{':
                hdr=s[hdr_start:i].strip()
                outer_ok=all(k in ('ns','cls') for k,_,_ in stack)
                h=re.sub(r'\s+',' ',hdr)
                kind='blk'
                if re.match(r'^(namespace\b|extern "")',h) or h=='' and not stack: kind='ns'
                elif re.search(r'\b(class|struct|union|enum)\b[^()]*$',h) and '(' not in h.split(':')[0]: kind='cls'
                elif outer_ok and re.search(r'\)\s*(const|override|noexcept|final|->[^{]*|\s|:[^{]*)*$',h) and not re.match(r'^(if|for|while|switch|catch)\b',h):
                    kind='fn'
                    m=re.search(r'([~\w:]+(?:operator\S*)?)\s*\(',h)
                    name=m.group(1) if m else h[:40]
                    stack.append((kind,line,name)); hdr_start=i+1; continue
                stack.append((kind,line,h[:40]))
            elif c=='}':
                if stack:
                    k,l0,name=stack.pop()
                    if k=='fn': res.append((line-l0+1,f,l0,name))
            hdr_start=i+1
res.sort(reverse=True)
over=[r for r in res if r[0]>lim]
for n,f,l,name in over:
    print(f"{n:5d} {f}:{l} {name}")
print(f"{len(res)} functions in {len(args)} files, {len(over)} over {lim} lines")
sys.exit(1 if over else 0)
