#!/usr/bin/perl
# A FaaS-like Perl function for cxlfork's real-runtime tests: pyfunc.py's
# twin in perl.
#
# At start it loads core modules (XS ones included: List::Util, Digest::SHA,
# POSIX, Storable; JSON::PP in pure perl) and builds ~16 MiB of warm state
# deterministically (srand with a fixed seed): a hash of str -> array, an
# array of floats and a string blob. Then it prints "ready <pid>" and waits
# for requests forever; a clone restored from a checkpoint taken while it
# waits goes on waiting, not knowing it is a clone.
#
# A request is one SIGUSR1. Request n (counted per process from 1) computes
# a SHA-256 over the whole warm state, records the request in the state,
# and appends "result <n> <hexdigest>" to RESULT_DIR/<pid>.result (opened
# and closed per request; RESULT_DIR is $RT_DIR or /tmp/rt) and to stdout.
#
#   plfunc.pl [MIB]     warm state size in MiB (default 16, or $PLFUNC_MIB)
use strict;
use warnings;
use List::Util qw(sum max min reduce);
use Digest::SHA qw(sha256_hex);
use Digest::MD5 qw(md5_hex);
use POSIX qw(floor fmod);
use Storable qw(freeze);
use JSON::PP ();

my $SEED = 20250520;
my $RESULT_DIR = $ENV{RT_DIR} // '/tmp/rt';
my $MIB = $ARGV[0] // $ENV{PLFUNC_MIB} // 16;
# Share of the state (about): hash 50%, floats 25%, blob 25% (bytes per
# item measured with perl 5.36).
my $N_KEYS = int($MIB * 1024 * 1024 * 0.50 / 430);
my $N_FLOATS = int($MIB * 1024 * 1024 * 0.25 / 40);
my $BLOB_BYTES = int($MIB * 1024 * 1024 * 0.25);

srand($SEED);
my @letters = ('a' .. 'z');
my %table;
my @keys;
for my $i (0 .. $N_KEYS - 1) {
	my $tag = join '', map { $letters[int rand 26] } 1 .. 3;
	my $key = "item-$i-$tag";
	$table{$key} = [$i, rand(), sprintf('%s:%08x%08x', $tag, int rand 2**32, int rand 2**32), $i % 97];
	push @keys, $key;
}
# Built piecewise: a big temporary list would stay in perl's heap.
my @floats;
push @floats, rand(2e6) - 1e6 for 1 .. $N_FLOATS;
my $blob = '';
$blob .= pack 'N*', map { int rand 2**32 } 1 .. 1024 for 1 .. $BLOB_BYTES / 4096;
my %config = (seed => $SEED, mib => $MIB, regions => [qw(north south east west centre)]);
my $json = JSON::PP->new->canonical;
$Storable::canonical = 1;
my @requests;

sub answer {
	my ($n) = @_;
	my @parts = ("request $n");
	# Lookups (keys chosen by the state's own sequence), and every value.
	for my $j (0 .. 999) {
		my $k = $keys[($n * 7919 + $j * 104729) % @keys];
		$k =~ /^[a-z]+-(\d+)-([a-z]{3})$/ or die "bad key $k";
		push @parts, join(',', $k, @{ $table{$k} }, $1, $2);
	}
	push @parts, sum(map { $_->[0] * $_->[3] } values %table);
	push @parts, sprintf('%.6f', sum(@floats)), sprintf('%.6f', max(@floats)), sprintf('%.6f', min(@floats));
	push @parts, floor(fmod((reduce { $a + abs($b) } 0, @floats[0 .. 999]), 1e6));
	push @parts, sha256_hex($blob), md5_hex(substr($blob, 0, 65536));
	push @parts, sha256_hex(freeze([@table{ @keys[0 .. 99] }]));
	push @parts, $json->encode({ %config, requests => \@requests });
	my $digest = sha256_hex(join "\n", @parts);
	# The request becomes part of the state.
	push @requests, [$n, $digest];
	my $k = "request-$n-" . substr($digest, 0, 3);
	$table{$k} = [$n, 0, $digest, $n % 97];
	push @keys, $k;
	return $digest;
}

my $pending = 0;
$SIG{USR1} = sub { $pending++ };
$| = 1;
# Closed explicitly: a lexical handle would stay open in the pad, and an
# open /proc/<pid>/status cannot be reopened by a clone on another host.
my $rss = 0;
if (open my $status, '<', '/proc/self/status') {
	/^VmRSS:\s+(\d+)/ and $rss = $1 for <$status>;
	close $status;
}
printf "# plfunc: %d keys, %d floats, %d MiB blob; rss %d MiB\n", scalar @keys, scalar @floats, length($blob) >> 20, $rss >> 10;
print "ready $$\n";
my $served = 0;
while (1) {
	# A signal between the check and the sleep waits for the next second.
	sleep 1 unless $pending;
	while ($pending > 0) {
		$pending--;
		$served++;
		my $line = "result $served " . answer($served);
		open my $f, '>>', "$RESULT_DIR/$$.result" or die "$RESULT_DIR/$$.result: $!";
		print $f "$line\n";
		close $f;
		print "$line\n";
	}
}
