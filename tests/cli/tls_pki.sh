# tls_pki.sh - make_pki DIR: a throw-away PKI for the TLS tests and the TLS
# benchmark, made with the openssl command line (sourced; needs fail()).
#
#   ca.crt ca.key           the test CA (signs everything below)
#   server.crt server.key   recd's certificate, serial 1001, for 127.0.0.1
#   server2.crt server2.key a second one, serial 2002 (the reload tests)
#   client.crt client.key   a client certificate, serial 3003
#   expired.crt expired.key a client certificate that expired in 2020
#   rogue.crt rogue.key     a self-signed client certificate (untrusted)
#
# EC P-256 keys: generated in milliseconds, where RSA would take seconds.
make_pki() {
  local d=$1
  mkdir -p "$d"
  (
    cd "$d"
    local ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
    openssl req -x509 "${ec[@]}" -keyout ca.key -out ca.crt -days 30 \
      -subj "/CN=recd test CA" -addext "basicConstraints=critical,CA:TRUE" \
      -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >server.ext
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    sign() { # name CN serial extfile
      openssl req -new "${ec[@]}" -keyout "$1.key" -out "$1.csr" -subj "/CN=$2" 2>/dev/null
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -set_serial "$3" -days 30 \
        -extfile "$4" -out "$1.crt" 2>/dev/null
    }
    sign server localhost 0x1001 server.ext
    sign server2 localhost 0x2002 server.ext
    sign client storefront 0x3003 client.ext
    # An expired certificate: `openssl x509 -req` cannot backdate in
    # OpenSSL 3.0, `openssl ca` can (-startdate/-enddate) with a minimal
    # CA database.
    mkdir -p caout && : >index.txt && echo 4004 >serial
    cat >ca.cnf <<'EOF'
[ca]
default_ca = test
[test]
database = index.txt
serial = serial
new_certs_dir = caout
default_md = sha256
policy = any
unique_subject = no
x509_extensions = client
[any]
commonName = supplied
[client]
extendedKeyUsage = clientAuth
EOF
    openssl req -new "${ec[@]}" -keyout expired.key -out expired.csr -subj "/CN=expired" \
      2>/dev/null
    openssl ca -config ca.cnf -batch -notext -cert ca.crt -keyfile ca.key -in expired.csr \
      -startdate 20200101000000Z -enddate 20200201000000Z -out expired.crt 2>/dev/null
    openssl req -x509 "${ec[@]}" -keyout rogue.key -out rogue.crt -days 30 -subj "/CN=rogue" \
      2>/dev/null
  ) || fail "make_pki: openssl failed"
  local f
  for f in ca server server2 client expired rogue; do
    [ -s "$d/$f.crt" ] && [ -s "$d/$f.key" ] || fail "make_pki: $f.crt/$f.key missing"
  done
}
